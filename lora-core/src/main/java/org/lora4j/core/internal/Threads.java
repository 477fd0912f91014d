package org.lora4j.core.internal;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * The threading contract of lora4j: which threads run what. Three pools share the cores.
 *
 * <ol>
 *   <li><b>OpenBLAS's own threads</b> run the large matrix products (cblas gemm on preallocated
 *       buffers, the bulk of a training step). OpenBLAS sizes its pool itself; lora4j does not
 *       call it from several Java threads at once except for the small single-threaded products
 *       of attention tiles.</li>
 *   <li><b>The common fork-join pool</b> runs every Java-side parallel loop: attention tiles, the
 *       element-wise chunks of the kernels (RMSNorm, SwiGLU, RoPE, softmax) and the optimizer.
 *       They all go through {@link #parallelFor} and {@link #slots} here. Work is cut into pieces
 *       whose size is fixed, never derived from the core count, and reductions add the pieces'
 *       partial results in piece order, so results are the same on every machine.</li>
 *   <li><b>ND4J's OpenMP pool</b> (libnd4j) runs any remaining ND4J op (initialisation, checkpoint
 *       conversions, a few small ops outside the step).</li>
 * </ol>
 *
 * <p>OpenMP's wait policy: after an OpenMP parallel region its threads spin for a while before
 * sleeping, unless {@code OMP_WAIT_POLICY=PASSIVE} is set before the JVM starts. Spinning threads
 * take the cores that the fork-join workers and OpenBLAS want next, so every ND4J op between two
 * Java loops or products costs the next one time. The training step's optimizer, clipping and
 * zeroing are Java loops (no ND4J op per tensor), but initialisation, checkpoints and the ops left
 * elsewhere still run on OpenMP, so {@link #noteIfWaitPolicyUnset} says once per process what an
 * unset policy was measured to cost (docs/performance.md).
 */
public final class Threads {
    private static final Logger log = LoggerFactory.getLogger(Threads.class);
    private static final AtomicBoolean warned = new AtomicBoolean();

    private Threads() {
    }

    /**
     * Work slots of a parallel loop over {@code tasks} (at least 1, at most {@code tasks}): the
     * workers of the pool the caller is in (the common pool when called from outside a pool) plus
     * the calling thread when it is not itself a worker. Give each slot its own scratch, and let
     * the slot count decide only who computes a piece, never how the work is cut.
     */
    public static int slots(int tasks) {
        int threads = ForkJoinTask.inForkJoinPool()
                ? ForkJoinTask.getPool().getParallelism()
                : ForkJoinPool.getCommonPoolParallelism() + 1;
        return Math.max(1, Math.min(tasks, threads));
    }

    /**
     * Runs {@code body.accept(i)} for every i in [0, count) on the caller's fork-join pool (the
     * common pool when called from outside one), the calling thread included, and returns when all
     * are done.
     */
    public static void parallelFor(int count, IntConsumer body) {
        if (count == 1) {
            body.accept(0);
        } else {
            IntStream.range(0, count).parallel().forEach(body);
        }
    }

    /** Pieces of {@code pieceSize} that cover {@code length} elements (the last one may be shorter). */
    public static int pieces(long length, int pieceSize) {
        if (length < 0 || pieceSize < 1) {
            throw new IllegalArgumentException("length must be >= 0 and piece size >= 1, got " + length
                    + " and " + pieceSize);
        }
        return Math.toIntExact((length + pieceSize - 1) / pieceSize);
    }

    /** First task of {@code part} when [0, tasks) is cut into {@code parts} contiguous ranges. */
    public static int rangeStart(int part, int parts, int tasks) {
        return (int) ((long) part * tasks / parts);
    }

    /**
     * Logs one INFO line per process when {@code OMP_WAIT_POLICY} is not set in the environment;
     * called at the first optimizer built. INFO, not WARN: the training step itself runs no ND4J op
     * and measured the same speed with and without the variable; what is left is a few percent of a
     * whole run, from initialisation and saving (docs/performance.md).
     */
    public static void noteIfWaitPolicyUnset() {
        noteIfWaitPolicyUnset(System.getenv("OMP_WAIT_POLICY"), log);
    }

    /** {@link #noteIfWaitPolicyUnset()} with the variable's value and the logger given; for tests. */
    static boolean noteIfWaitPolicyUnset(String waitPolicy, Logger logger) {
        if (waitPolicy != null && !waitPolicy.isBlank()) {
            return false;
        }
        if (!warned.compareAndSet(false, true)) {
            return false;
        }
        logger.info("OMP_WAIT_POLICY is not set: ND4J's OpenMP threads spin after each ND4J op and take the cores "
                + "from the next product ({}). Set OMP_WAIT_POLICY=PASSIVE in the environment before starting "
                + "the JVM (docs/performance.md).", UNSET_COST);
        return true;
    }

    /** What an unset wait policy was measured to cost on the project's 2-core machine (docs/performance.md). */
    static final String UNSET_COST = "measured on 2 cores: training steps run no ND4J op and the same speed "
            + "either way, a whole d 256 pretrain run 1.05x as long, an ND4J op before a large product 1.7x";

    /** Forgets that the warning was given; for tests. */
    static void resetWarning() {
        warned.set(false);
    }
}

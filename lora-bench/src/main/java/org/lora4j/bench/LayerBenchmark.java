package org.lora4j.bench;

import org.lora4j.core.LoraConfig;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.runner.IterationType;

import java.util.concurrent.TimeUnit;

/**
 * Shared settings and helpers for the layer benchmarks: one square layer of width {@link #d}
 * (in = out = d) over {@link #TOKENS} tokens in float32, every buffer preallocated in set-up.
 *
 * <p>Run settings are chosen so the whole grid fits in about ten minutes on two cores: one fork
 * (every benchmark starts ND4J afresh), 3 x 1 s of warm-up (gemm needs no JIT warm-up beyond the
 * first few calls) and 5 x 1 s of measurement. At d = 4096 one base product takes about 100 ms, so
 * a 1 s iteration still holds several calls.
 *
 * <p>Every concrete benchmark checks its result once against a naive double-precision reference
 * built with {@code mmul} before any timing, and fails the run if it is wrong: a fast wrong answer
 * is not a result.
 *
 * <p>Around every iteration (outside the timed region) it records how much CPU other processes
 * took, to the file named by the environment variable {@code LORA_BENCH_CPU_LOG}; see
 * {@link CpuContention}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms1g", "-Xmx4g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public abstract class LayerBenchmark {
    /** Tokens per batch (batch x sequence length), the n. */
    static final int TOKENS = 512;
    /** lora_alpha; PEFT examples commonly use 16. The scaling does not change the cost. */
    static final double ALPHA = 16.0;
    /** Relative error allowed against the double reference, as a fraction of the reference's max |value|. */
    static final double TOLERANCE = 1e-4;

    /** in_features = out_features. */
    @Param({"1024", "4096"})
    public int d;

    private CpuContention cpu;

    @Setup(Level.Trial)
    public void openCpuLog() {
        cpu = CpuContention.open();
    }

    @Setup(Level.Iteration)
    public void startIterationCpu() {
        if (cpu != null) {
            cpu.begin();
        }
    }

    @TearDown(Level.Iteration)
    public void endIterationCpu(IterationParams iteration) {
        if (cpu != null) {
            cpu.end(iteration.getType() == IterationType.WARMUP);
        }
    }

    @TearDown(Level.Trial)
    public void writeCpuLog(BenchmarkParams benchmark) {
        if (cpu != null) {
            cpu.writeLog(benchmark);
        }
    }

    /** A layer without bias (the base-product baseline has none either), weights like nn.Linear's init. */
    LoraLinear newLayer(long seed) {
        INDArray w = uniformF(d, d, 1.0 / Math.sqrt(d), seed);   // [out, in]
        return new LoraLinear("bench.proj", w, null);
    }

    /** Adds the adapter with B non-zero (RANDOM init), so the adapter term is really computed and checked. */
    static void addRandomAdapter(LoraLinear layer, int rank, long seed) {
        layer.addAdapter("bench", LoraConfig.of(rank, ALPHA, "proj").withInit(LoraConfig.Init.RANDOM), seed);
    }

    /** A [rows, cols] FLOAT array in 'f' order, not a view, with elements uniform in [-bound, bound). */
    static INDArray uniformF(long rows, long cols, double bound, long seed) {
        Nd4j.getRandom().setSeed(seed);
        INDArray u = Nd4j.rand(DataType.FLOAT, rows, cols).subi(0.5).muli(2 * bound);
        INDArray f = Nd4j.createUninitialized(DataType.FLOAT, new long[]{rows, cols}, 'f');
        f.assign(u);
        return f;
    }

    /** An uninitialised [rows, cols] FLOAT 'f' array: gemm writes into it. */
    static INDArray outputF(long rows, long cols) {
        return Nd4j.createUninitialized(DataType.FLOAT, new long[]{rows, cols}, 'f');
    }

    static INDArray dbl(INDArray a) {
        return a.castTo(DataType.DOUBLE);
    }

    /** The naive reference x Wᵀ + s (x Aᵀ) Bᵀ in double precision; a and b may be null for the base product alone. */
    static INDArray referenceForward(INDArray x, INDArray w, INDArray a, INDArray b, double s) {
        INDArray y = dbl(x).mmul(dbl(w).transpose());
        if (a != null) {
            y.addi(dbl(x).mmul(dbl(a).transpose()).mmul(dbl(b).transpose()).muli(s));
        }
        return y;
    }

    /** The naive reference input gradient dOut W + s (dOut B) A; a and b may be null. */
    static INDArray referenceInputGrad(INDArray dOut, INDArray w, INDArray a, INDArray b, double s) {
        INDArray dx = dbl(dOut).mmul(dbl(w));
        if (a != null) {
            dx.addi(dbl(dOut).mmul(dbl(b)).mmul(dbl(a)).muli(s));
        }
        return dx;
    }

    /** Throws unless {@code got} matches {@code expected} to {@link #TOLERANCE} of expected's largest magnitude. */
    static void check(String what, INDArray got, INDArray expected) {
        double scale = expected.amaxNumber().doubleValue();
        double err = dbl(got).sub(expected).amaxNumber().doubleValue();
        if (!(err <= TOLERANCE * scale) || scale == 0) {
            throw new IllegalStateException(what + ": max |error| " + err + " exceeds " + TOLERANCE
                    + " x max |reference| " + scale);
        }
    }

    /**
     * Throws unless the adapter term is large enough that {@link #check} would notice it missing:
     * otherwise a forward that skipped the adapter would pass.
     */
    static void checkAdapterVisible(INDArray x, INDArray a, INDArray b, double s, INDArray reference) {
        double term = dbl(x).mmul(dbl(a).transpose()).mmul(dbl(b).transpose()).muli(s).amaxNumber().doubleValue();
        double scale = reference.amaxNumber().doubleValue();
        if (term < 100 * TOLERANCE * scale) {
            throw new IllegalStateException("adapter term " + term + " too small to check against " + scale);
        }
    }
}

package org.lora4j.core.internal;

import org.junit.jupiter.api.Test;
import org.slf4j.Logger;

import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ThreadsTest {

    private static <T> T inPool(int threads, java.util.concurrent.Callable<T> work) throws Exception {
        ForkJoinPool pool = new ForkJoinPool(threads);
        try {
            return pool.submit(work).get();
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void slotsFollowThePoolTheCallerRunsIn() throws Exception {
        assertEquals(1, inPool(1, () -> Threads.slots(10)));
        assertEquals(3, inPool(3, () -> Threads.slots(10)));
        assertEquals(2, inPool(3, () -> Threads.slots(2)));
        assertEquals(1, Threads.slots(0));
        // From outside a pool: the common pool's workers plus the caller.
        assertEquals(Math.min(50, ForkJoinPool.getCommonPoolParallelism() + 1), Threads.slots(50));
    }

    @Test
    void rangesCoverEveryTaskOnceForAnySlotCount() {
        for (int tasks : new int[]{1, 7, 100}) {
            for (int parts = 1; parts <= Math.min(tasks, 5); parts++) {
                assertEquals(0, Threads.rangeStart(0, parts, tasks));
                assertEquals(tasks, Threads.rangeStart(parts, parts, tasks));
                for (int p = 0; p < parts; p++) {
                    assertTrue(Threads.rangeStart(p + 1, parts, tasks) > Threads.rangeStart(p, parts, tasks),
                            "part " + p + " of " + parts + " over " + tasks + " tasks is empty");
                }
            }
        }
    }

    @Test
    void piecesDependOnlyOnLengthAndPieceSize() {
        assertEquals(0, Threads.pieces(0, 4096));
        assertEquals(1, Threads.pieces(4096, 4096));
        assertEquals(2, Threads.pieces(4097, 4096));
        assertThrows(IllegalArgumentException.class, () -> Threads.pieces(10, 0));
    }

    /** A sum over fixed pieces, added in piece order, whatever the number of workers that computed them. */
    private static double pieceSum(double[] x) {
        int piece = 1000;
        int pieces = Threads.pieces(x.length, piece);
        double[] partial = new double[pieces];
        AtomicIntegerArray runs = new AtomicIntegerArray(pieces);
        int parts = Threads.slots(pieces);
        Threads.parallelFor(parts, part -> {
            for (int k = Threads.rangeStart(part, parts, pieces); k < Threads.rangeStart(part + 1, parts, pieces); k++) {
                runs.incrementAndGet(k);
                for (int i = k * piece; i < Math.min(x.length, (k + 1) * piece); i++) {
                    partial[k] += x[i];
                }
            }
        });
        for (int k = 0; k < pieces; k++) {
            assertEquals(1, runs.get(k), "piece " + k);
        }
        double s = 0;
        for (double p : partial) {
            s += p;
        }
        return s;
    }

    @Test
    void aPieceReductionIsBitIdenticalWithOneTwoAndFourWorkers() throws Exception {
        java.util.Random r = new java.util.Random(3);
        double[] x = new double[10_500];
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextGaussian() * Math.pow(10, r.nextInt(12) - 6);   // sums that depend on their order
        }
        double one = inPool(1, () -> pieceSum(x));
        assertEquals(one, inPool(2, () -> pieceSum(x)));
        assertEquals(one, inPool(4, () -> pieceSum(x)));
        assertEquals(one, pieceSum(x));
    }

    @Test
    void theWaitPolicyWarningIsLoggedOncePerProcessAndOnlyWhenUnset() {
        List<String> warnings = new ArrayList<>();
        Logger logger = (Logger) Proxy.newProxyInstance(Logger.class.getClassLoader(), new Class<?>[]{Logger.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("info")) {
                        warnings.add((String) args[0]);
                    }
                    return method.getReturnType() == boolean.class ? Boolean.TRUE : null;
                });
        Threads.resetWarning();
        assertFalse(Threads.noteIfWaitPolicyUnset("PASSIVE", logger));
        assertTrue(warnings.isEmpty());
        assertTrue(Threads.noteIfWaitPolicyUnset(null, logger));
        assertFalse(Threads.noteIfWaitPolicyUnset(null, logger));
        assertFalse(Threads.noteIfWaitPolicyUnset("", logger));
        assertEquals(1, warnings.size());
        assertTrue(warnings.get(0).contains("OMP_WAIT_POLICY=PASSIVE"), warnings.get(0));
    }
}

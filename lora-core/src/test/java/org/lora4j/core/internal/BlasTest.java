package org.lora4j.core.internal;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Blas against a plain triple loop, over every storage order, transpose, offset and leading dimension it meets. */
class BlasTest {
    private static INDArray random(DataType t, char order, long rows, long cols, SplittableRandom rng) {
        INDArray a = Nd4j.create(t, new long[]{rows, cols}, order);
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                a.putScalar(i, j, rng.nextDouble(-1, 1));
            }
        }
        return a;
    }

    /** alpha · op(a) · op(b) + beta · c by the definition, in double. */
    private static double[][] reference(INDArray a, boolean ta, INDArray b, boolean tb, INDArray c, double alpha, double beta) {
        int m = (int) c.size(0);
        int n = (int) c.size(1);
        int k = (int) (ta ? a.size(0) : a.size(1));
        double[][] want = new double[m][n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    s += (ta ? a.getDouble(p, i) : a.getDouble(i, p)) * (tb ? b.getDouble(j, p) : b.getDouble(p, j));
                }
                want[i][j] = alpha * s + beta * c.getDouble(i, j);
            }
        }
        return want;
    }

    private static void assertClose(double[][] want, INDArray got, DataType t, String what) {
        double tol = t == DataType.DOUBLE ? 1e-12 : 1e-5;
        for (int i = 0; i < want.length; i++) {
            for (int j = 0; j < want[i].length; j++) {
                assertEquals(want[i][j], got.getDouble(i, j), tol, what + " element (" + i + ", " + j + ")");
            }
        }
    }

    private static void check(INDArray a, boolean ta, INDArray b, boolean tb, INDArray c, double alpha, double beta, String what) {
        double[][] want = reference(a, ta, b, tb, c, alpha, beta);
        Blas.gemm(Blas.operand(a), ta, Blas.operand(b), tb, Blas.operand(c), alpha, beta);
        assertClose(want, c, c.dataType(), what);
    }

    @Test
    void wholeMatricesMatchTheLoopForEveryOrderAndTranspose() {
        SplittableRandom rng = new SplittableRandom(3);
        for (DataType t : new DataType[]{DataType.FLOAT, DataType.DOUBLE}) {
            for (char oa : new char[]{'c', 'f'}) {
                for (char ob : new char[]{'c', 'f'}) {
                    for (boolean ta : new boolean[]{false, true}) {
                        for (boolean tb : new boolean[]{false, true}) {
                            INDArray a = ta ? random(t, oa, 7, 5, rng) : random(t, oa, 5, 7, rng);
                            INDArray b = tb ? random(t, ob, 3, 7, rng) : random(t, ob, 7, 3, rng);
                            INDArray c = random(t, 'f', 5, 3, rng);
                            check(a, ta, b, tb, c, 1.5, 0.5, t + " " + oa + (ta ? "ᵀ" : "") + " x " + ob + (tb ? "ᵀ" : ""));
                        }
                    }
                }
            }
        }
    }

    @Test
    void readsAndWritesBlocksOfLargerMatrices() {
        SplittableRandom rng = new SplittableRandom(5);
        for (DataType t : new DataType[]{DataType.FLOAT, DataType.DOUBLE}) {
            INDArray big = random(t, 'f', 6, 10, rng);
            INDArray left = big.get(NDArrayIndex.all(), NDArrayIndex.interval(0, 4));      // offset 0
            INDArray right = big.get(NDArrayIndex.all(), NDArrayIndex.interval(7, 10));    // offset 42
            check(left, false, random(t, 'f', 4, 3, rng), false, right, 1.0, 1.0, t + " column blocks");
            INDArray vector = random(t, 'f', 6, 1, rng);
            check(right, true, vector, false, Nd4j.create(t, new long[]{3, 1}, 'f'), 1.0, 0.0, t + " into a vector");
            // Row blocks of 'c' matrices are row-major with a leading dimension wider than the block.
            INDArray wide = random(t, 'c', 8, 9, rng);
            INDArray rows = wide.get(NDArrayIndex.interval(2, 5), NDArrayIndex.interval(1, 8));  // [3, 7], ld 9
            check(rows, false, random(t, 'c', 7, 4, rng), false, random(t, 'f', 3, 4, rng), 2.0, 0.0, t + " row block");
            // An operand over a buffer at an offset.
            INDArray flat = random(t, 'c', 1, 40, rng);
            INDArray over = Nd4j.create(flat.data(), new long[]{5, 4}, new long[]{1, 5}, 9, 'f');
            check(over, true, random(t, 'f', 5, 2, rng), false, random(t, 'f', 4, 2, rng), 1.0, 1.0, t + " over an offset");
        }
    }

    @Test
    void blocksWithLeadingDimensionsMatchTheLoopForEveryTranspose() {
        SplittableRandom rng = new SplittableRandom(7);
        int m = 5;
        int n = 4;
        int k = 6;
        for (DataType t : new DataType[]{DataType.FLOAT, DataType.DOUBLE}) {
            for (boolean ta : new boolean[]{false, true}) {
                for (boolean tb : new boolean[]{false, true}) {
                    // Each operand is a block inside a larger 'f' buffer (a view at an offset), at
                    // a position past its start, with a leading dimension wider than the block.
                    INDArray aBuf = random(t, 'f', 11, 9, rng).get(NDArrayIndex.all(), NDArrayIndex.interval(1, 9));
                    INDArray bBuf = random(t, 'f', 10, 8, rng);
                    INDArray cBuf = random(t, 'f', 9, 7, rng).get(NDArrayIndex.all(), NDArrayIndex.interval(2, 7));
                    int aRows = ta ? k : m;
                    int aCols = ta ? m : k;
                    int bRows = tb ? n : k;
                    int bCols = tb ? k : n;
                    INDArray a = aBuf.get(NDArrayIndex.interval(3, 3 + aRows), NDArrayIndex.interval(1, 1 + aCols)).dup();
                    INDArray b = bBuf.get(NDArrayIndex.interval(2, 2 + bRows), NDArrayIndex.interval(0, bCols)).dup();
                    INDArray c = cBuf.get(NDArrayIndex.interval(4, 4 + m), NDArrayIndex.interval(1, 1 + n));
                    double[][] want = reference(a, ta, b, tb, c, 0.75, -1.25);
                    INDArray cBefore = cBuf.dup();
                    Blas.gemm(ta, tb, m, n, k, 0.75, NativeBuffer.of(aBuf), 3 + 11, 11, NativeBuffer.of(bBuf), 2, 10,
                            -1.25, NativeBuffer.of(cBuf), 4 + 9, 9);
                    String what = t + " block " + (ta ? "Aᵀ" : "A") + " x " + (tb ? "Bᵀ" : "B");
                    assertClose(want, c, t, what);
                    // Nothing outside C's block changed.
                    INDArray diff = cBuf.sub(cBefore);
                    diff.get(NDArrayIndex.interval(4, 4 + m), NDArrayIndex.interval(1, 1 + n)).assign(0);
                    assertEquals(0.0, diff.amaxNumber().doubleValue(), what + ": outside C's block");
                }
            }
        }
    }

    @Test
    void refusesMisfitsAndNamesTheSizes() {
        INDArray a = Nd4j.create(DataType.FLOAT, new long[]{4, 3}, 'f');
        Exception e = assertThrows(IllegalArgumentException.class, () -> Blas.gemm(Blas.operand(a), false, Blas.operand(a), false,
                Blas.operand(Nd4j.create(DataType.FLOAT, new long[]{4, 3}, 'f')), 1, 0));
        assertTrue(e.getMessage().contains("[4, 3] FLOAT x [4, 3] FLOAT -> [4, 3] FLOAT"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Blas.gemm(Blas.operand(a), true, Blas.operand(a), false,
                Blas.operand(Nd4j.create(DataType.FLOAT, new long[]{3, 3}, 'c')), 1, 0));
        assertTrue(e.getMessage().contains("column-major"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Blas.gemm(Blas.operand(a), true, Blas.operand(a), false,
                Blas.operand(Nd4j.create(DataType.DOUBLE, new long[]{3, 3}, 'f')), 1, 0));
        assertTrue(e.getMessage().contains("DOUBLE"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Blas.operand(Nd4j.create(DataType.FLOAT, 2, 3, 4)));
        assertTrue(e.getMessage().contains("[2, 3, 4]"), e.getMessage());

        NativeBuffer buf = NativeBuffer.of(Nd4j.create(DataType.FLOAT, 20));
        e = assertThrows(IndexOutOfBoundsException.class,
                () -> Blas.gemm(false, false, 4, 4, 4, 1, buf, 0, 4, buf, 0, 4, 0, buf, 5, 4));
        assertTrue(e.getMessage().contains("block C of 4 x 4 with leading dimension 4 at element 5 spans 16 elements")
                && e.getMessage().contains("buffer of 20"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Blas.gemm(true, false, 2, 2, 3, 1, buf, 0, 2, buf, 0, 3, 0, buf, 0, 2));
        assertTrue(e.getMessage().contains("block A of 3 x 2 needs a leading dimension >= 3, got 2"), e.getMessage());
        NativeBuffer doubles = NativeBuffer.of(Nd4j.create(DataType.DOUBLE, 20));
        e = assertThrows(IllegalArgumentException.class,
                () -> Blas.gemm(false, false, 2, 2, 2, 1, buf, 0, 2, doubles, 0, 2, 0, buf, 0, 2));
        assertTrue(e.getMessage().contains("FLOAT x DOUBLE into FLOAT"), e.getMessage());
    }

    /** Block products allocate nothing per call (attention makes thousands a step), in either type. */
    @Test
    void blockProductsAllocateNothing() {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        for (DataType t : new DataType[]{DataType.FLOAT, DataType.DOUBLE}) {
            NativeBuffer buf = NativeBuffer.of(Nd4j.rand(t, 64, 1));
            Runnable call = () -> Blas.gemm(false, true, 4, 4, 4, 1, buf, 0, 4, buf, 16, 4, 0, buf, 32, 4);
            for (int i = 0; i < 20_000; i++) {
                call.run();   // past the JIT's compilation of the path
            }
            long before = mx.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 10_000; i++) {
                call.run();
            }
            long bytes = mx.getCurrentThreadAllocatedBytes() - before;
            assertTrue(bytes < 10_000, t + ": 10,000 block products allocated " + bytes + " bytes");
        }
    }
}

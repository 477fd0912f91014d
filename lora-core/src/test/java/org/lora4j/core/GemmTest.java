package org.lora4j.core;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Gemm against ND4J's allocating mmul, over every storage order, transpose and offset it meets. */
class GemmTest {
    private static void check(INDArray a, boolean ta, INDArray b, boolean tb, INDArray c, double alpha, double beta) {
        INDArray before = c.castTo(DataType.DOUBLE).dup();
        INDArray opA = (ta ? a.transpose() : a).castTo(DataType.DOUBLE).dup();
        INDArray opB = (tb ? b.transpose() : b).castTo(DataType.DOUBLE).dup();
        INDArray want = opA.mmul(opB).muli(alpha).addi(before.muli(beta));
        Gemm.gemm(Gemm.of(a), ta, Gemm.of(b), tb, Gemm.of(c), alpha, beta);
        double err = c.castTo(DataType.DOUBLE).sub(want).amaxNumber().doubleValue() / want.amaxNumber().doubleValue();
        assertTrue(err < (c.dataType() == DataType.DOUBLE ? 1e-12 : 1e-5), "relative error " + err);
    }

    @Test
    void matchesMmulForEveryLayoutAndTranspose() {
        Nd4j.getRandom().setSeed(3);
        for (DataType t : new DataType[]{DataType.FLOAT, DataType.DOUBLE}) {
            for (char oa : new char[]{'c', 'f'}) {
                for (char ob : new char[]{'c', 'f'}) {
                    for (boolean ta : new boolean[]{false, true}) {
                        for (boolean tb : new boolean[]{false, true}) {
                            INDArray a = Nd4j.rand(t, ta ? new long[]{7, 5} : new long[]{5, 7}).dup(oa);
                            INDArray b = Nd4j.rand(t, tb ? new long[]{3, 7} : new long[]{7, 3}).dup(ob);
                            INDArray c = Nd4j.rand(t, 5, 3).dup('f');
                            check(a, ta, b, tb, c, 1.5, 0.5);
                        }
                    }
                }
            }
        }
    }

    @Test
    void readsAndWritesColumnBlocksOfLargerMatrices() {
        INDArray big = Nd4j.rand(DataType.FLOAT, 'f', 6, 10);
        INDArray left = big.get(NDArrayIndex.all(), NDArrayIndex.interval(0, 4));      // offset 0
        INDArray right = big.get(NDArrayIndex.all(), NDArrayIndex.interval(7, 10));    // offset 42
        INDArray w = Nd4j.rand(DataType.FLOAT, 'f', 4, 3);
        check(left, false, w, false, right, 1.0, 1.0);
        INDArray vector = Nd4j.rand(DataType.FLOAT, 'f', 6, 1);
        check(right, true, vector, false, Nd4j.create(DataType.FLOAT, new long[]{3, 1}, 'f'), 1.0, 0.0);
    }

    @Test
    void refusesMisfitsAndRowMajorOutputs() {
        INDArray a = Nd4j.rand(DataType.FLOAT, 'f', 4, 3);
        assertThrows(IllegalArgumentException.class,
                () -> Gemm.gemm(Gemm.of(a), false, Gemm.of(a), false, Gemm.of(Nd4j.create(DataType.FLOAT, new long[]{4, 3}, 'f')), 1, 0));
        assertThrows(IllegalArgumentException.class,
                () -> Gemm.gemm(Gemm.of(a), true, Gemm.of(a), false, Gemm.of(Nd4j.create(DataType.FLOAT, new long[]{3, 3}, 'c')), 1, 0));
    }
}

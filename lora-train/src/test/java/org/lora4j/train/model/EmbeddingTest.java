package org.lora4j.train.model;

import org.junit.jupiter.api.Test;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * {@link Embedding}: the lookup reads the table's rows; the backward adds each row's gradient into
 * its token's row, twice for a token seen twice; tied to lm_head, the table and its gradient are
 * lm_head's weight and weight gradient, so lm_head's own gradient and the embedding's add up.
 */
class EmbeddingTest {
    static final int V = 7;
    static final int D = 3;
    static final int[] TOKENS = {4, 1, 4, 6};

    static INDArray table() {
        double[] v = RmsNormTest.randn(new Random(8), V * D);
        return Nd4j.create(v, new long[]{V, D}, DataType.DOUBLE);
    }

    /** The expected gradient [V, D] of L = Σ dh ∘ h: token t's row gets the sum of its rows of dh. */
    static double[][] expected(double[] dh, int n) {
        double[][] g = new double[V][D];
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < D; c++) {
                g[TOKENS[r]][c] += dh[c * n + r];
            }
        }
        return g;
    }

    @Test
    void lookupAndScatterAdd() {
        INDArray t = table();
        Embedding e = new Embedding(t, DataType.DOUBLE);
        assertNull(e.grad());
        int n = TOKENS.length;
        double[] h = new double[n * D];
        e.forward(TOKENS, n, h);
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < D; c++) {
                assertEquals(t.getDouble(TOKENS[r], c), h[c * n + r], 0.0);
            }
        }
        e.setTrainable(true);
        double[] dh = RmsNormTest.randn(new Random(9), n * D);
        e.backward(dh);
        double[][] want = expected(dh, n);
        for (int v = 0; v < V; v++) {
            assertArrayEquals(want[v], e.grad().getRow(v).toDoubleVector(), 1e-15, "row " + v);
        }
    }

    @Test
    void tiedToLmHeadSharesTheTableAndTheGradient() {
        LoraLinear lmHead = new LoraLinear("lm_head", table(), null);
        lmHead.setWeightsTrainable(true);
        Embedding e = new Embedding(lmHead);
        assertSame(lmHead.weight(), e.table());
        int n = TOKENS.length;
        // lm_head's own gradient first: dW = dOutᵀ x
        INDArray x = Nd4j.create(RmsNormTest.randn(new Random(10), n * D), new long[]{n, D}, DataType.DOUBLE);
        INDArray dOut = Nd4j.create(RmsNormTest.randn(new Random(11), n * V), new long[]{n, V}, DataType.DOUBLE);
        INDArray out = Nd4j.create(DataType.DOUBLE, new long[]{n, V}, 'f');
        lmHead.forward(x, out);
        lmHead.backward(dOut, null);
        INDArray head = dOut.transpose().mmul(x);   // [V, D]
        e.forward(TOKENS, n, new double[n * D]);
        double[] dh = RmsNormTest.randn(new Random(12), n * D);
        e.backward(dh);
        double[][] want = expected(dh, n);
        for (int v = 0; v < V; v++) {
            assertArrayEquals(lmHead.weightGrad().getRow(v).toDoubleVector(), e.grad().getRow(v).toDoubleVector());
            for (int c = 0; c < D; c++) {
                assertEquals(head.getDouble(v, c) + want[v][c], lmHead.weightGrad().getDouble(v, c), 1e-13,
                        "row " + v + " column " + c);
            }
        }
    }
}

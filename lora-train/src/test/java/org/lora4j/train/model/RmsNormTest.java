package org.lora4j.train.model;

import org.junit.jupiter.api.Test;
import org.lora4j.core.internal.NativeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * {@link RmsNorm} as the model runs it: its parallel row blocks (300 rows span two blocks of 256)
 * and its weight gradient summed over them, central-difference checked in DOUBLE through
 * L = Σ w ∘ y; and its gradient accumulating over two backwards.
 */
class RmsNormTest {
    static final int N = 300;
    static final int D = 3;
    /**
     * Absolute floor of the relative error: L sums 900 terms (about 30), so the central
     * difference carries about 30 · 1e-16 / 1e-6 = 3e-9 of rounding; 1e-2 keeps that below 1e-6.
     */
    static final double FLOOR = 1e-2;

    @Test
    void backwardMatchesCentralDifferencesAcrossRowBlocks() {
        Random r = new Random(3);
        double[] x = randn(r, N * D);
        double[] w = randn(r, D);
        double[] wOut = randn(r, N * D);
        RmsNorm norm = new RmsNorm("n.weight", Nd4j.createFromArray(w.clone()), 1e-5);
        norm.setTrainable(true);
        norm.forward(x, N, Workspace.nat(DataType.DOUBLE, N, D));
        double[] dx = new double[N * D];
        norm.backward(nat(wOut), dx);
        double[] dw = AttentionTest.host(norm.grad());
        KernelsGradientTest.check("RmsNorm dx", x, dx, unused -> {
            INDArray out = Workspace.nat(DataType.DOUBLE, N, D);
            new RmsNorm("n.weight", Nd4j.createFromArray(w.clone()), 1e-5).forward(x, N, out);
            return KernelsGradientTest.dot(AttentionTest.host(out), wOut);
        }, FLOOR, KernelsGradientTest.EPS);
        KernelsGradientTest.check("RmsNorm dw", w, dw, unused -> {
            INDArray out = Workspace.nat(DataType.DOUBLE, N, D);
            new RmsNorm("n.weight", Nd4j.createFromArray(w.clone()), 1e-5).forward(x, N, out);
            return KernelsGradientTest.dot(AttentionTest.host(out), wOut);
        }, FLOOR, KernelsGradientTest.EPS);
    }

    /** v as a native DOUBLE [N, D] 'f' array. */
    private static INDArray nat(double[] v) {
        INDArray a = Workspace.nat(DataType.DOUBLE, N, D);
        NativeBuffer.write(v, a, v.length);
        return a;
    }

    static double[] randn(Random r, int n) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = r.nextGaussian();
        }
        return a;
    }

    @Test
    void gradientsAccumulateAndFrozenWeightsHaveNone() {
        Random r = new Random(4);
        double[] x = randn(r, N * D);
        double[] dy = randn(r, N * D);
        INDArray weight = Nd4j.createFromArray(1.5, -0.5, 2.0);
        RmsNorm norm = new RmsNorm("n.weight", weight, 1e-5);
        assertNull(norm.grad());
        norm.forward(x, N, Workspace.nat(DataType.DOUBLE, N, D));
        norm.backward(nat(dy), new double[N * D]);  // frozen: only the input gradient
        norm.setTrainable(true);
        double[] dx1 = new double[N * D];
        norm.backward(nat(dy), dx1);
        double[] once = AttentionTest.host(norm.grad());
        double[] dx2 = dx1.clone();
        norm.backward(nat(dy), dx2);
        double[] twice = AttentionTest.host(norm.grad());
        for (int i = 0; i < D; i++) {
            once[i] *= 2;
        }
        assertArrayEquals(once, twice, 1e-12);
        for (int i = 0; i < dx1.length; i++) {
            dx1[i] *= 2;
        }
        assertArrayEquals(dx1, dx2, 1e-12);   // dx accumulates too
        norm.zeroGrad();
        assertArrayEquals(new double[D], AttentionTest.host(norm.grad()));
        assertArrayEquals(new long[]{D}, norm.parameter().value().shape());
    }
}

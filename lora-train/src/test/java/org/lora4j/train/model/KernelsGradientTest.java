package org.lora4j.train.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.buffer.DataType;
import org.lora4j.core.internal.NativeBuffer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Central-difference checks (double precision, eps 1e-6) of each block's backward, through the
 * scalar objective L = Σ w ∘ out with a fixed random w.
 */
class KernelsGradientTest {
    static final double EPS = 1e-6;
    /** Reseeded before each test, so a test's data does not depend on which tests ran before it. */
    static Random RNG = new Random(7);

    @BeforeEach
    void reseed() {
        RNG = new Random(7);
    }

    static double[] randn(int n, double scale) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = RNG.nextGaussian() * scale;
        }
        return a;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /** Checks analytic[i] against the central difference of f at every index of x. */
    static void check(String what, double[] x, double[] analytic, Function<double[], Double> f) {
        check(what, x, analytic, f, 1e-6, EPS);
    }

    /** As above with an absolute floor on the denominator of the relative error, and a step eps. */
    static void check(String what, double[] x, double[] analytic, Function<double[], Double> f, double floor,
                      double eps) {
        double worst = 0;
        for (int i = 0; i < x.length; i++) {
            double old = x[i];
            x[i] = old + eps;
            double up = f.apply(x);
            x[i] = old - eps;
            double down = f.apply(x);
            x[i] = old;
            double num = (up - down) / (2 * eps);
            double err = Math.abs(num - analytic[i]) / Math.max(Math.abs(num) + Math.abs(analytic[i]), floor);
            worst = Math.max(worst, err);
        }
        System.out.printf("gradcheck %s: worst rel err %.2e over %d entries%n", what, worst, x.length);
        assertTrue(worst < 1e-6, what + ": worst relative error " + worst);
    }

    @Test
    void rmsNorm() {
        int n = 5;
        int d = 6;
        double[] x = randn(n * d, 1);
        double[] w = randn(d, 1);
        double[] wOut = randn(n * d, 1);
        Function<double[], Double> loss = unused -> {
            double[] y = new double[n * d];
            Kernels.rmsNormForward(x, w, 1e-5, n, d, y, n, 0, new double[n], 0, n);
            return dot(y, wOut);
        };
        double[] y = new double[n * d];
        double[] rstd = new double[n];
        Kernels.rmsNormForward(x, w, 1e-5, n, d, y, n, 0, rstd, 0, n);
        double[] dx = new double[n * d];
        double[] dw = new double[d];
        Kernels.rmsNormBackward(x, w, rstd, wOut, n, 0, n, d, dx, dw, new double[n], 0, n);
        check("rmsnorm dx", x, dx, loss);
        check("rmsnorm dw", w, dw, loss);
    }

    @Test
    void swiglu() {
        int len = 30;
        double[] g = randn(len, 2);
        double[] u = randn(len, 1);
        double[] wOut = randn(len, 1);
        Function<double[], Double> loss = unused -> {
            double[] a = new double[len];
            Kernels.swigluForward(g, u, a, 0, len);
            return dot(a, wOut);
        };
        double[] dg = new double[len];
        double[] du = new double[len];
        Kernels.swigluBackward(g, u, wOut, dg, du, 0, len);
        check("swiglu dgate", g, dg, loss);
        check("swiglu dup", u, du, loss);
    }

    /** RoPE then causal attention for one head, over two sequences, with and without earlier positions. */
    @Test
    void ropeAndAttention() {
        for (int past : new int[]{0, 3}) {
            int tq = 5;
            int tk = past + tq;
            int hd = 4;
            double[] q = randn(tq * hd, 1);
            double[] k = randn(tk * hd, 1);
            double[] v = randn(tk * hd, 1);
            double[] wOut = randn(tq * hd, 1);
            double[] cos = new double[tk * hd / 2];
            double[] sin = new double[tk * hd / 2];
            for (int p = 0; p < tk; p++) {
                for (int f = 0; f < hd / 2; f++) {
                    cos[p * hd / 2 + f] = Math.cos(p * Math.pow(100, -2.0 * f / hd));
                    sin[p * hd / 2 + f] = Math.sin(p * Math.pow(100, -2.0 * f / hd));
                }
            }
            double scale = 1 / Math.sqrt(hd);
            Function<double[], Double> loss = unused -> {
                double[] qr = q.clone();
                double[] kr = k.clone();
                Rope.rope(qr, tq, tq, 1, hd, past, cos, sin, 1);
                Rope.rope(kr, tk, tk, 1, hd, 0, cos, sin, 1);
                double[] o = new double[tq * hd];
                AttentionReference.attentionForward(qr, 0, tq, kr, 0, tk, v, 0, tk, tq, tk, hd, scale, o, 0, tq, null, 0,
                        new double[tq * tk], new double[tq], new double[tq]);
                return dot(o, wOut);
            };
            double[] qr = q.clone();
            double[] kr = k.clone();
            Rope.rope(qr, tq, tq, 1, hd, past, cos, sin, 1);
            Rope.rope(kr, tk, tk, 1, hd, 0, cos, sin, 1);
            double[] o = new double[tq * hd];
            double[] lse = new double[tq];
            AttentionReference.attentionForward(qr, 0, tq, kr, 0, tk, v, 0, tk, tq, tk, hd, scale, o, 0, tq, lse, 0,
                    new double[tq * tk], new double[tq], new double[tq]);
            double[] dq = new double[tq * hd];
            double[] dk = new double[tk * hd];
            double[] dv = new double[tk * hd];
            AttentionReference.attentionBackward(qr, 0, tq, kr, 0, tk, v, 0, tk, tq, tk, hd, scale, wOut, 0, tq, lse, 0,
                    dq, dk, dv, new double[tq * tk], new double[tq * tk], new double[tq]);
            Rope.rope(dq, tq, tq, 1, hd, past, cos, sin, -1);
            Rope.rope(dk, tk, tk, 1, hd, 0, cos, sin, -1);
            check("rope+attention dq (past " + past + ")", q, dq, loss);
            check("rope+attention dk (past " + past + ")", k, dk, loss);
            check("attention dv (past " + past + ")", v, dv, loss);
        }
    }

    /**
     * The softmax of the model's attention: L = Σ w ∘ causalSoftmax(s) over a block with earlier
     * positions (tq < tk) and a square one over more than one 64-tile; causalSoftmaxBackward with
     * dp = w gives dL/ds times its scale argument. Hidden entries must get 0 (they do not change p).
     */
    @Test
    void causalSoftmax() {
        for (int[] shape : new int[][]{{3, 8}, {70, 70}}) {
            int tq = shape[0];
            int tk = shape[1];
            double[] s = randn(tq * tk, 2);
            double[] w = randn(tq * tk, 1);
            Function<double[], Double> loss = x -> {
                double[] p = x.clone();
                Kernels.causalSoftmax(p, tq, tk, null, 0, new double[tq], new double[tq]);
                return dot(p, w);
            };
            double[] lse = new double[tq];
            double[] p = s.clone();
            Kernels.causalSoftmax(p, tq, tk, lse, 0, new double[tq], new double[tq]);
            double scale = 0.25;
            double[] ds = w.clone();
            double[] sc = s.clone();
            Kernels.causalSoftmaxBackward(sc, ds, tq, tk, scale, lse, 0, new double[tq]);
            for (int i = 0; i < ds.length; i++) {
                ds[i] /= scale;
            }
            // eps 1e-4, floor 1e-4: L sums tq·tk terms, and at eps 1e-6 their rounding over 2 eps
            // (about 5e-9) swamped the gradients of the near-zero probabilities (2e-3 relative)
            check("causal softmax " + tq + "x" + tk, s, ds, loss, 1e-4, 1e-4);
        }
    }

    @Test
    void crossEntropyWithMaskAndShift() {
        int batch = 2;
        int seq = 4;
        int vocab = 5;
        int n = batch * seq;
        double[] logits = randn(n * vocab, 2);
        int[] tokens = {1, 4, 0, 2, 3, 3, 1, 0};
        boolean[] mask = {true, true, false, true, true, false, true, true};
        // LmHead's cross-entropy overwrites the logits with the gradient of the mean loss
        Function<double[], Double> loss = x -> LmHead.crossEntropyInPlace(logitsArray(x, n, vocab), tokens, mask, seq,
                new double[n], new double[4][vocab * 16]);
        INDArray g = logitsArray(logits, n, vocab);
        double mean = LmHead.crossEntropyInPlace(g, tokens, mask, seq, new double[n], new double[4][vocab * 16]);
        double[] dl = new double[n * vocab];
        NativeBuffer.of(g).read(0, dl, 0, dl.length);
        assertEquals(loss.apply(logits), mean, 0.0);
        // targets t = 1..seq-1 of each sequence with mask true: seq 0 -> 4 and 2; seq 1 -> 1 and 0, so the
        // gradient of a counted row sums to 0 and carries -1/4 at its target
        double rowSum = 0;
        for (int v = 0; v < vocab; v++) {
            rowSum += dl[v * n];
        }
        assertEquals(0.0, rowSum, 1e-15);
        check("cross-entropy dlogits", logits, dl, loss, 1e-6, 1e-5);
    }

    /** [n, vocab] 'f' DOUBLE holding x (column-major, row r and token v at v·n + r). */
    private static INDArray logitsArray(double[] x, int n, int vocab) {
        INDArray a = Nd4j.create(DataType.DOUBLE, new long[]{n, vocab}, 'f');
        NativeBuffer.of(a).write(x, 0, 0, x.length);
        return a;
    }
}

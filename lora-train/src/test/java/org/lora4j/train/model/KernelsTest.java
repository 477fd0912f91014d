package org.lora4j.train.model;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Values (not gradients) of the Java kernels: expFloat's accuracy and the causal softmax. */
class KernelsTest {

    /**
     * expFloat against Math.exp over its whole input range [-88, 88], on a grid of step 1/1024
     * (180,225 points, every reduced argument x/1024 it sees within rounding) plus 100,000 random
     * points; the relative error grows with |x| (each of the ten squarings doubles it), so it is
     * also bounded near 0. Measured here: 8.2e-11 worst (at x = -88.0), 1.9e-13 for |x| <= 1.
     */
    @Test
    void expFloatIsAccurateOverItsWholeRange() {
        double worst = 0;
        double worstAt = 0;
        double worstSmall = 0;
        Random r = new Random(5);
        int grid = 88 * 1024 * 2;
        for (int i = 0; i <= grid + 100_000; i++) {
            double x = i <= grid ? -88.0 + i / 1024.0 : -88.0 + 176.0 * r.nextDouble();
            double want = Math.exp(x);
            double err = Math.abs(Kernels.expFloat(x) - want) / want;
            if (err > worst) {
                worst = err;
                worstAt = x;
            }
            if (Math.abs(x) <= 1) {
                worstSmall = Math.max(worstSmall, err);
            }
        }
        System.out.printf("expFloat: worst rel err %.2e at x = %.4f; %.2e for |x| <= 1%n", worst, worstAt, worstSmall);
        assertTrue(worst < 1e-10, "expFloat rel err " + worst + " at " + worstAt);
        assertTrue(worstSmall < 5e-13, "expFloat rel err " + worstSmall + " for |x| <= 1");
        // far below float32's 6e-8 relative rounding, the precision it serves
        assertTrue(worst < 6e-8 / 100);
    }

    /** Beyond [-88, 88] e^x is 0 or infinite in float32: the argument is clamped, never NaN. */
    @Test
    void expFloatClampsOutsideItsRange() {
        assertEquals(Kernels.expFloat(-88), Kernels.expFloat(-1e6));
        assertEquals(Kernels.expFloat(88), Kernels.expFloat(1e6));
        assertEquals(Kernels.expFloat(-88), Kernels.expFloat(Double.NEGATIVE_INFINITY));
        assertTrue(Kernels.expFloat(-88) > 0 && Kernels.expFloat(-88) < 1e-38);
        assertTrue(Double.isFinite(Kernels.expFloat(88)) && Kernels.expFloat(88) > 1e38);
        assertEquals(1.0, Kernels.expFloat(0.0));
        double[] a = {-1, 0, 1, 2};
        Kernels.expFloatInPlace(a, 1, 3);
        assertEquals(-1, a[0]);
        assertEquals(1.0, a[1]);
        assertEquals(Kernels.expFloat(1), a[2]);
        assertEquals(2, a[3]);
    }

    /**
     * The plain causal softmax: p[i][j] = exp(s[i][j]) / Σ_{j' <= past + i} exp(s[i][j']) for the
     * visible keys, exactly 0 for the hidden ones, lse = log Σ exp; with Math.exp on doubles
     * (DOUBLE models) and with expFloat on float32 blocks (FLOAT models), for square blocks, blocks
     * with earlier positions (tq < tk) and a block of 150 x 150. Measured here: 5.6e-17 with
     * Math.exp, 3.0e-8 on float32 (absolute, on probabilities: the float32 rounding of the output).
     */
    @Test
    void causalSoftmaxMatchesThePlainFormula() {
        Random r = new Random(9);
        int[][] shapes = {{1, 1}, {5, 5}, {3, 8}, {1, 150}, {70, 150}, {150, 150}};
        for (int[] shape : shapes) {
            int tq = shape[0];
            int tk = shape[1];
            int past = tk - tq;
            double[] s = new double[tq * tk];
            for (int i = 0; i < s.length; i++) {
                s[i] = (float) (4 * r.nextGaussian());   // float32 values: the FLOAT kernel's input
            }
            // the plain formula, row by row, in double with Math.exp
            double[] want = new double[tq * tk];
            double[] wantLse = new double[tq];
            for (int i = 0; i < tq; i++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j <= past + i; j++) {
                    max = Math.max(max, s[i + j * tq]);
                }
                double sum = 0;
                for (int j = 0; j <= past + i; j++) {
                    sum += Math.exp(s[i + j * tq] - max);
                }
                for (int j = 0; j <= past + i; j++) {
                    want[i + j * tq] = Math.exp(s[i + j * tq] - max) / sum;
                }
                wantLse[i] = max + Math.log(sum);
            }
            for (boolean floatExp : new boolean[]{false, true}) {
                double[] p = s.clone();
                double[] lse = new double[tq + 3];
                if (floatExp) {
                    float[] pf = new float[s.length];
                    for (int i = 0; i < s.length; i++) {
                        pf[i] = (float) s[i];
                    }
                    // one tile over the whole block: every hidden entry is one the products read
                    Kernels.causalSoftmax(pf, new double[s.length], tq, tk, 1 << 20, lse, 3, new double[tq],
                            new double[tq]);
                    for (int i = 0; i < s.length; i++) {
                        p[i] = pf[i];
                    }
                } else {
                    Kernels.causalSoftmax(p, tq, tk, lse, 3, new double[tq], new double[tq]);
                }
                double worst = 0;
                for (int i = 0; i < tq; i++) {
                    double rowSum = 0;
                    for (int j = 0; j < tk; j++) {
                        double got = p[i + j * tq];
                        if (j > past + i) {
                            assertEquals(0.0, got, "hidden entry (" + i + ", " + j + ") of " + tq + "x" + tk);
                        } else {
                            worst = Math.max(worst, Math.abs(got - want[i + j * tq]));
                            rowSum += got;
                        }
                    }
                    assertEquals(1.0, rowSum, floatExp ? 1e-5 : 1e-12, "row " + i + " sums to 1");
                    assertEquals(wantLse[i], lse[3 + i], 1e-12 * Math.max(1, Math.abs(wantLse[i])), "lse of row " + i);
                }
                System.out.printf("causalSoftmax %dx%d %s: worst abs err %.2e%n", tq, tk, floatExp ? "expFloat" : "Math.exp", worst);
                // float32 output: within half an ulp of 1 (6e-8) plus expFloat's error
                assertTrue(worst < (floatExp ? 6.5e-8 : 2e-16), tq + "x" + tk + " floatExp " + floatExp + ": " + worst);
                assertEquals(0.0, lse[0] + lse[1] + lse[2], "nothing written before lseOff");
            }
        }
        // lse may be null (generation does not keep it)
        double[] p = {1, 2, 3, 4};
        Kernels.causalSoftmax(p, 2, 2, null, 0, new double[2], new double[2]);
        assertEquals(1.0, p[0]);
        assertEquals(0.0, p[2]);
        assertEquals(1 / (1 + Math.exp(-2)), p[3], 1e-15);
        assertEquals(Math.exp(2 - 4) / (1 + Math.exp(2 - 4)), p[1], 1e-15);
    }

    /**
     * The backward on float32 blocks with expFloat agrees with the one on doubles with Math.exp
     * (measured 7.0e-9 absolute: the float32 rounding of the output);
     * hidden entries come out 0. KernelsGradientTest checks the Math.exp one against central
     * differences.
     */
    @Test
    void causalSoftmaxBackwardWithExpFloatMatchesMathExp() {
        Random r = new Random(10);
        int tq = 70;
        int tk = 150;
        int past = tk - tq;
        double[] s = new double[tq * tk];
        double[] dp = new double[tq * tk];
        for (int i = 0; i < s.length; i++) {
            s[i] = (float) (4 * r.nextGaussian());   // float32 values: the FLOAT kernel's input
            dp[i] = (float) r.nextGaussian();
        }
        double[] probs = s.clone();
        double[] lse = new double[tq];
        Kernels.causalSoftmax(probs, tq, tk, lse, 0, new double[tq], new double[tq]);
        double[][] ds = new double[2][];
        for (int f = 0; f < 2; f++) {
            double[] sc = s.clone();
            ds[f] = dp.clone();
            if (f == 0) {
                Kernels.causalSoftmaxBackward(sc, ds[f], tq, tk, 0.5, lse, 0, new double[tq]);
            } else {
                float[] sf = new float[s.length];
                float[] df = new float[s.length];
                for (int i = 0; i < s.length; i++) {
                    sf[i] = (float) sc[i];
                    df[i] = (float) ds[f][i];
                }
                Kernels.causalSoftmaxBackward(sf, df, new double[s.length], tq, tk, 1 << 20, 0.5, lse, 0,
                        new double[tq]);
                for (int i = 0; i < s.length; i++) {
                    sc[i] = sf[i];
                    ds[f][i] = df[i];
                }
            }
            for (int i = 0; i < tq; i++) {
                for (int j = 0; j < tk; j++) {
                    if (j > past + i) {
                        assertEquals(0.0, ds[f][i + j * tq], "hidden score gradient (" + i + ", " + j + ")");
                        assertEquals(0.0, sc[i + j * tq], "hidden probability (" + i + ", " + j + ")");
                    } else {
                        assertEquals(probs[i + j * tq], sc[i + j * tq], 1e-7, "recomputed probability");
                    }
                }
            }
        }
        double worst = 0;
        for (int i = 0; i < ds[0].length; i++) {
            worst = Math.max(worst, Math.abs(ds[0][i] - ds[1][i]));
        }
        System.out.printf("causalSoftmaxBackward expFloat vs Math.exp: worst abs diff %.2e%n", worst);
        assertTrue(worst < 5e-7, "expFloat backward (float32 output) differs by " + worst);
        assertTrue(Arrays.stream(ds[0]).anyMatch(v -> Math.abs(v) > 1e-3), "a gradient that is not all zero");
    }

    /**
     * SwiGLU on float32 chunks (FLOAT models, expFloat, rounded once) agrees with the double
     * kernels (Math.exp) to float32 rounding, forward and backward, over a range that does not
     * start at 0.
     */
    @Test
    void swigluOnFloat32MatchesDouble() {
        Random r = new Random(11);
        int len = 3000;
        int from = 7;
        float[] g = new float[len];
        float[] u = new float[len];
        float[] da = new float[len];
        double[] gd = new double[len];
        double[] ud = new double[len];
        double[] dad = new double[len];
        for (int i = 0; i < len; i++) {
            g[i] = (float) (6 * r.nextGaussian());
            u[i] = (float) r.nextGaussian();
            da[i] = (float) r.nextGaussian();
            gd[i] = g[i];
            ud[i] = u[i];
            dad[i] = da[i];
        }
        float[] a = new float[len];
        float[] dg = new float[len];
        float[] du = new float[len];
        Kernels.swigluForward(g, u, a, new double[len], from, len);
        Kernels.swigluBackward(g, u, da, dg, du, new double[len], from, len);
        double[] ad = new double[len];
        double[] dgd = new double[len];
        double[] dud = new double[len];
        Kernels.swigluForward(gd, ud, ad, from, len);
        Kernels.swigluBackward(gd, ud, dad, dgd, dud, from, len);
        for (int i = 0; i < len; i++) {
            if (i < from) {
                assertEquals(0.0f, a[i], "before the range");
                assertEquals(0.0f, dg[i], "before the range");
                continue;
            }
            assertEquals(ad[i], a[i], 1e-7 * Math.max(1, Math.abs(ad[i])), "a " + i);
            assertEquals(dgd[i], dg[i], 1e-7 * Math.max(1, Math.abs(dgd[i])), "dg " + i);
            assertEquals(dud[i], du[i], 1e-7 * Math.max(1, Math.abs(dud[i])), "du " + i);
        }
    }
}

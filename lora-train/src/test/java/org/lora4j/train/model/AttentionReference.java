package org.lora4j.train.model;

/**
 * The naive reference for {@link Attention}: causal scaled dot-product attention of one query head
 * over one sequence as plain double loops with Math.exp, forward and backward. AttentionTest
 * compares the model's tiled BLAS attention with it, and KernelsGradientTest gradient-checks it.
 * (It was the model's attention before the tiled one replaced it; production no longer runs it, so
 * it lives with the tests.)
 *
 * <p>q (i, c) at q[qOff + c·qs + i] for i < tq; k and v (j, c) at k[kOff + c·ks + j] for j < tk;
 * the first query sits at position past = tk − tq and query i sees keys j <= past + i.
 * Scores are kept transposed, st[j·tq + i], so every inner loop runs over i, contiguously.
 */
final class AttentionReference {
    private AttentionReference() {
    }

    static void attentionForward(double[] q, int qOff, int qs, double[] k, int kOff, int ks,
                                 double[] v, int vOff, int vs, int tq, int tk, int hd, double scale,
                                 double[] o, int oOff, int os, double[] lse, int lseOff,
                                 double[] st, double[] rowMax, double[] rowSum) {
        int past = tk - tq;
        scores(q, qOff, qs, k, kOff, ks, tq, tk, hd, scale, st);
        java.util.Arrays.fill(rowMax, 0, tq, Double.NEGATIVE_INFINITY);
        java.util.Arrays.fill(rowSum, 0, tq, 0.0);
        for (int j = 0; j < tk; j++) {
            int s = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                rowMax[i] = Math.max(rowMax[i], st[s + i]);
            }
        }
        for (int j = 0; j < tk; j++) {
            int s = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                double e = Math.exp(st[s + i] - rowMax[i]);
                st[s + i] = e;
                rowSum[i] += e;
            }
        }
        for (int i = 0; i < tq; i++) {
            if (lse != null) {
                lse[lseOff + i] = rowMax[i] + Math.log(rowSum[i]);
            }
            rowSum[i] = 1.0 / rowSum[i];
        }
        for (int c = 0; c < hd; c++) {
            int oc = oOff + c * os;
            java.util.Arrays.fill(o, oc, oc + tq, 0.0);
            for (int j = 0; j < tk; j++) {
                double vcj = v[vOff + c * vs + j];
                int s = j * tq;
                for (int i = Math.max(0, j - past); i < tq; i++) {
                    o[oc + i] += vcj * st[s + i];
                }
            }
            for (int i = 0; i < tq; i++) {
                o[oc + i] *= rowSum[i];
            }
        }
    }

    /** st[j·tq + i] = scale · q_i · k_j for the visible pairs. */
    private static void scores(double[] q, int qOff, int qs, double[] k, int kOff, int ks,
                               int tq, int tk, int hd, double scale, double[] st) {
        int past = tk - tq;
        for (int j = 0; j < tk; j++) {
            int s = j * tq;
            int i0 = Math.max(0, j - past);
            java.util.Arrays.fill(st, s + i0, s + tq, 0.0);
            for (int c = 0; c < hd; c++) {
                double kcj = k[kOff + c * ks + j] * scale;
                int qc = qOff + c * qs;
                for (int i = i0; i < tq; i++) {
                    st[s + i] += kcj * q[qc + i];
                }
            }
        }
    }

    /**
     * Backward of {@link #attentionForward} from the saved log-sum-exp (the probabilities are
     * recomputed, so nothing of size seq² is kept between forward and backward). Adds into dq, dk
     * and dv, which use the layouts of q, k and v.
     */
    static void attentionBackward(double[] q, int qOff, int qs, double[] k, int kOff, int ks,
                                  double[] v, int vOff, int vs, int tq, int tk, int hd, double scale,
                                  double[] dO, int dOff, int dos, double[] lse, int lseOff,
                                  double[] dq, double[] dk, double[] dv, double[] p, double[] dp, double[] rowSum) {
        int past = tk - tq;
        scores(q, qOff, qs, k, kOff, ks, tq, tk, hd, scale, p);
        for (int j = 0; j < tk; j++) {
            int s = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                p[s + i] = Math.exp(p[s + i] - lse[lseOff + i]);
            }
        }
        // dp[j][i] = dO_i · v_j
        for (int j = 0; j < tk; j++) {
            int s = j * tq;
            int i0 = Math.max(0, j - past);
            java.util.Arrays.fill(dp, s + i0, s + tq, 0.0);
            for (int c = 0; c < hd; c++) {
                double vcj = v[vOff + c * vs + j];
                int oc = dOff + c * dos;
                for (int i = i0; i < tq; i++) {
                    dp[s + i] += vcj * dO[oc + i];
                }
            }
        }
        // softmax backward: ds = p ∘ (dp − Σ_j p ∘ dp), then the 1/sqrt(hd) scale of the scores
        java.util.Arrays.fill(rowSum, 0, tq, 0.0);
        for (int j = 0; j < tk; j++) {
            int s = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                rowSum[i] += p[s + i] * dp[s + i];
            }
        }
        // dv_j += Σ_i p[j][i] dO_i, before dp is overwritten by ds
        for (int j = 0; j < tk; j++) {
            int s = j * tq;
            int i0 = Math.max(0, j - past);
            for (int c = 0; c < hd; c++) {
                dv[vOff + c * vs + j] += dot(p, s, dO, dOff + c * dos, i0, tq);
            }
        }
        for (int j = 0; j < tk; j++) {
            int s = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                dp[s + i] = p[s + i] * (dp[s + i] - rowSum[i]) * scale;
            }
        }
        for (int c = 0; c < hd; c++) {
            int qc = qOff + c * qs;
            for (int j = 0; j < tk; j++) {
                double kcj = k[kOff + c * ks + j];
                int s = j * tq;
                int i0 = Math.max(0, j - past);
                for (int i = i0; i < tq; i++) {
                    dq[qc + i] += kcj * dp[s + i];
                }
                dk[kOff + c * ks + j] += dot(dp, s, q, qc, i0, tq);
            }
        }
    }

    /** Σ_{i0 <= i < end} a[aOff + i] · b[bOff + i], four partial sums for instruction-level parallelism. */
    private static double dot(double[] a, int aOff, double[] b, int bOff, int i0, int end) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int i = i0;
        for (; i + 3 < end; i += 4) {
            s0 += a[aOff + i] * b[bOff + i];
            s1 += a[aOff + i + 1] * b[bOff + i + 1];
            s2 += a[aOff + i + 2] * b[bOff + i + 2];
            s3 += a[aOff + i + 3] * b[bOff + i + 3];
        }
        for (; i < end; i++) {
            s0 += a[aOff + i] * b[bOff + i];
        }
        return (s0 + s1) + (s2 + s3);
    }
}

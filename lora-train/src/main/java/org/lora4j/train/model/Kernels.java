package org.lora4j.train.model;

/**
 * The model's non-matrix-product parts as plain loops over double[] arrays, and for FLOAT models
 * over float[] copies of the native buffers (bulk copies, no conversion pass) with the arithmetic
 * in double, so the result is the double computation rounded once.
 *
 * <p>Layout: an activation [n, w] is column-major, element (row r, column c) at {@code r + c·n},
 * the same order as the 'f'-order ND4J buffers the linear layers write, so moving between them is
 * a straight copy. Rows are tokens ({@code b·seq + t}). Loops run down a column, which keeps the
 * innermost loop contiguous for the JIT.
 */
final class Kernels {
    private Kernels() {
    }

    // ---------------------------------------------------------------------------------------------
    // RMSNorm: y = w ∘ x · rstd, rstd = 1 / sqrt(mean(x²) + eps)

    /**
     * x [n, d]; w [d]; rstd [n] written, for the rows r0 <= r < r1 only. y: element (r, c) at
     * {@code c·yLd + r − yRow0} (y [n, d] itself with yLd n and yRow0 0, or one block of rows with
     * yLd r1 − r0 and yRow0 r0); y may not alias x.
     */
    static void rmsNormForward(double[] x, double[] w, double eps, int n, int d, double[] y, int yLd, int yRow0,
                               double[] rstd, int r0, int r1) {
        java.util.Arrays.fill(rstd, r0, r1, 0.0);
        for (int c = 0; c < d; c++) {
            int o = c * n;
            for (int r = r0; r < r1; r++) {
                double v = x[o + r];
                rstd[r] += v * v;
            }
        }
        for (int r = r0; r < r1; r++) {
            rstd[r] = 1.0 / Math.sqrt(rstd[r] / d + eps);
        }
        for (int c = 0; c < d; c++) {
            int o = c * n;
            int oy = c * yLd - yRow0;
            double wc = w[c];
            for (int r = r0; r < r1; r++) {
                y[oy + r] = x[o + r] * rstd[r] * wc;
            }
        }
    }

    /**
     * dx += dNorm(dy); dw[c] += Σ_r dy·x̂ when dw is not null, for the rows r0 <= r < r1 only (dw
     * gets their part of the sum). x, dx [n, d]; dy: element (r, c) at {@code c·dyLd + r − dyRow0}
     * (as y of {@link #rmsNormForward}). scratch [n].
     * dx̂ = dy ∘ w; dx = rstd · (dx̂ − x̂ · mean_c(dx̂ ∘ x̂)).
     */
    static void rmsNormBackward(double[] x, double[] w, double[] rstd, double[] dy, int dyLd, int dyRow0, int n, int d,
                                double[] dx, double[] dw, double[] scratch, int r0, int r1) {
        java.util.Arrays.fill(scratch, r0, r1, 0.0);
        for (int c = 0; c < d; c++) {
            int o = c * n;
            int og = c * dyLd - dyRow0;
            double wc = w[c];
            double dwc = 0;
            for (int r = r0; r < r1; r++) {
                double xh = x[o + r] * rstd[r];
                double g = dy[og + r];
                scratch[r] += g * wc * xh;
                dwc += g * xh;
            }
            if (dw != null) {
                dw[c] += dwc;
            }
        }
        for (int c = 0; c < d; c++) {
            int o = c * n;
            int og = c * dyLd - dyRow0;
            double wc = w[c];
            for (int r = r0; r < r1; r++) {
                double rs = rstd[r];
                dx[o + r] += rs * (dy[og + r] * wc - x[o + r] * rs * scratch[r] / d);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // exp for FLOAT models

    /**
     * a[i] = expFloat(a[i]) for from <= i < to. A loop of its own over one flat range: inside the
     * nested loops of the softmax (128 per column) C2 did not vectorize it, and the scalar
     * polynomial is slower than Math.exp (11 ns an element against 4 here).
     */
    static void expFloatInPlace(double[] a, int from, int to) {
        for (int i = from; i < to; i++) {
            a[i] = expFloat(a[i]);
        }
    }

    /**
     * e^x on [-88, 88], x clamped to that range (beyond it e^x is 0 or infinite in float32):
     * e^x = (e^(x/1024))^1024, a degree-7 Taylor polynomial on |x/1024| <= 0.086 squared ten times.
     * Each squaring doubles the relative error, so it grows with |x|: measured against Math.exp
     * over the whole range (KernelsTest), at most 8.2e-11 (at x = -88), 1.9e-13 for |x| <= 1. Only
     * multiplies, adds and min/max, so C2 vectorizes the loops it is inlined into; Math.exp is a
     * scalar call. Measured here on 704k elements: 1.0 ns an element against 3.8 for Math.exp,
     * SwiGLU 1.2 against 5.0. Far below float32's 6e-8, but not exact enough for the DOUBLE models
     * of the gradient checks, which keep Math.exp.
     */
    static double expFloat(double x) {
        double r = Math.max(-88.0, Math.min(88.0, x)) * (1.0 / 1024);
        double p = 1.0 / 5040;
        p = p * r + 1.0 / 720;
        p = p * r + 1.0 / 120;
        p = p * r + 1.0 / 24;
        p = p * r + 1.0 / 6;
        p = p * r + 0.5;
        p = p * r + 1.0;
        p = p * r + 1.0;
        p *= p;
        p *= p;
        p *= p;
        p *= p;
        p *= p;
        p *= p;
        p *= p;
        p *= p;
        p *= p;
        p *= p;
        return p;
    }

    // ---------------------------------------------------------------------------------------------
    // The softmax parts of attention whose products run as BLAS gemm (Attention): one head's
    // scores [tq, tk], column-major, (query i, key j) at i + j·tq, already scaled by 1/sqrt(hd).
    // Query i sees keys j <= past + i, past = tk − tq; hidden entries are set to 0, so the products
    // that follow can run over the full block.

    /**
     * s in place: scores in, probabilities out, with Math.exp (DOUBLE models); hidden entries set
     * to 0. Writes lse[lseOff + i] when lse is not null.
     */
    static void causalSoftmax(double[] s, int tq, int tk, double[] lse, int lseOff, double[] rowMax, double[] rowSum) {
        int past = tk - tq;
        java.util.Arrays.fill(rowMax, 0, tq, Double.NEGATIVE_INFINITY);
        java.util.Arrays.fill(rowSum, 0, tq, 0.0);
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                rowMax[i] = Math.max(rowMax[i], s[o + i]);
            }
        }
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            int i0 = Math.min(tq, Math.max(0, j - past));
            java.util.Arrays.fill(s, o, o + i0, 0.0);
            for (int i = i0; i < tq; i++) {
                double e = Math.exp(s[o + i] - rowMax[i]);
                s[o + i] = e;
                rowSum[i] += e;
            }
        }
        for (int i = 0; i < tq; i++) {
            if (lse != null) {
                lse[lseOff + i] = rowMax[i] + Math.log(rowSum[i]);
            }
            rowSum[i] = 1.0 / rowSum[i];
        }
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                s[o + i] *= rowSum[i];
            }
        }
    }

    /**
     * The softmax of FLOAT models on the float32 scores straight from the gemm (no double copy of
     * the block): s in place, scores in, probabilities out, computed in double with
     * {@link #expFloat}, e [tq·tk] the double scratch of the exponentials. Only the visible entries
     * are computed; hidden ones are set to 0 only where a {@code tile}-sized block that the
     * following products read holds them (see {@link #zeroFrom}), the rest of the block is left as
     * it was. Writes lse[lseOff + i] when lse is not null.
     */
    static void causalSoftmax(float[] s, double[] e, int tq, int tk, int tile, double[] lse, int lseOff,
                              double[] rowMax, double[] rowSum) {
        int past = tk - tq;
        java.util.Arrays.fill(rowMax, 0, tq, Double.NEGATIVE_INFINITY);
        java.util.Arrays.fill(rowSum, 0, tq, 0.0);
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                rowMax[i] = Math.max(rowMax[i], s[o + i]);
            }
        }
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                e[o + i] = s[o + i] - rowMax[i];
            }
        }
        // One flat loop over the block: C2 vectorizes exp only there, not per column nor on float
        // input; the hidden entries' values (left from earlier blocks) are never read.
        expFloatInPlace(e, 0, tq * tk);
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            int i0 = Math.min(tq, Math.max(0, j - past));
            for (int i = i0; i < tq; i++) {
                rowSum[i] += e[o + i];
            }
            java.util.Arrays.fill(s, o + zeroFrom(j, past, tile, i0), o + i0, 0f);
        }
        for (int i = 0; i < tq; i++) {
            if (lse != null) {
                lse[lseOff + i] = rowMax[i] + Math.log(rowSum[i]);
            }
            rowSum[i] = 1.0 / rowSum[i];
        }
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                s[o + i] = (float) (e[o + i] * rowSum[i]);
            }
        }
    }

    /**
     * First row of key column j that a product over {@code tile}-sized blocks reads, when query
     * block [i0, i0 + tile) reads the key blocks below past + i0 + tile (Attention's loops): rows
     * from there to the column's first visible row i0 are hidden entries that must be 0.
     */
    static int zeroFrom(int j, int past, int tile, int i0) {
        int lim = (j / tile) * tile - past;   // the column's key block start, in query rows
        return lim <= 0 ? 0 : Math.min(i0, (lim / tile) * tile);
    }

    /**
     * Backward of {@link #causalSoftmax(double[], int, int, double[], int, double[], double[])}
     * from the saved log-sum-exp, with Math.exp: s holds the recomputed scores and becomes
     * p = exp(s − lse); dp holds dO·Vᵀ and becomes ds = p ∘ (dp − Σ_j p ∘ dp) · scale, the gradient
     * of the unscaled scores q·k. Hidden entries of both set to 0.
     */
    static void causalSoftmaxBackward(double[] s, double[] dp, int tq, int tk, double scale, double[] lse, int lseOff,
                                      double[] rowSum) {
        int past = tk - tq;
        java.util.Arrays.fill(rowSum, 0, tq, 0.0);
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            int i0 = Math.min(tq, Math.max(0, j - past));
            java.util.Arrays.fill(s, o, o + i0, 0.0);
            java.util.Arrays.fill(dp, o, o + i0, 0.0);
            for (int i = i0; i < tq; i++) {
                double p = Math.exp(s[o + i] - lse[lseOff + i]);
                s[o + i] = p;
                rowSum[i] += p * dp[o + i];
            }
        }
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                dp[o + i] = s[o + i] * (dp[o + i] - rowSum[i]) * scale;
            }
        }
    }

    /**
     * The backward of FLOAT models on float32 blocks straight from the gemm, computed in double
     * with {@link #expFloat}, e [tq·tk] the double scratch of the probabilities: as
     * {@link #causalSoftmaxBackward(double[], double[], int, int, double, double[], int, double[])},
     * with hidden entries set to 0 only where the tile products read them
     * ({@link #causalSoftmax(float[], double[], int, int, int, double[], int, double[], double[])}).
     */
    static void causalSoftmaxBackward(float[] s, float[] dp, double[] e, int tq, int tk, int tile, double scale,
                                      double[] lse, int lseOff, double[] rowSum) {
        int past = tk - tq;
        java.util.Arrays.fill(rowSum, 0, tq, 0.0);
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                e[o + i] = s[o + i] - lse[lseOff + i];
            }
        }
        expFloatInPlace(e, 0, tq * tk);   // flat, as in the forward
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            int i0 = Math.min(tq, Math.max(0, j - past));
            for (int i = i0; i < tq; i++) {
                rowSum[i] += e[o + i] * dp[o + i];
            }
            int z = zeroFrom(j, past, tile, i0);
            java.util.Arrays.fill(s, o + z, o + i0, 0f);
            java.util.Arrays.fill(dp, o + z, o + i0, 0f);
        }
        for (int j = 0; j < tk; j++) {
            int o = j * tq;
            for (int i = Math.max(0, j - past); i < tq; i++) {
                double p = e[o + i];
                s[o + i] = (float) p;
                dp[o + i] = (float) (p * (dp[o + i] - rowSum[i]) * scale);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // SwiGLU: a = silu(g) ∘ u

    /** a[i] = silu(g[i]) · u[i] for from <= i < to, with Math.exp (DOUBLE models). */
    static void swigluForward(double[] g, double[] u, double[] a, int from, int to) {
        for (int i = from; i < to; i++) {
            double x = g[i];
            a[i] = x / (1.0 + Math.exp(-x)) * u[i];
        }
    }

    /**
     * As {@link #swigluForward(double[], double[], double[], int, int)} on float32 (FLOAT models),
     * computed in double with {@link #expFloat}: the arrays are the native buffers' chunks as they
     * are; t [to] double scratch. Three loops: C2 vectorizes expFloat only in a loop of doubles
     * with nothing else in it (measured here: 12 ns an element with the exp inside the float
     * loop, about 2 in its own loop).
     */
    static void swigluForward(float[] g, float[] u, float[] a, double[] t, int from, int to) {
        for (int i = from; i < to; i++) {
            t[i] = -(double) g[i];
        }
        expFloatInPlace(t, from, to);
        for (int i = from; i < to; i++) {
            double x = g[i];
            a[i] = (float) (x / (1.0 + t[i]) * u[i]);
        }
    }

    /** dg, du overwritten for from <= i < to, with Math.exp (DOUBLE models). */
    static void swigluBackward(double[] g, double[] u, double[] da, double[] dg, double[] du, int from, int to) {
        for (int i = from; i < to; i++) {
            double x = g[i];
            double sig = 1.0 / (1.0 + Math.exp(-x));
            du[i] = da[i] * (x * sig);
            dg[i] = da[i] * u[i] * sig * (1.0 + x * (1.0 - sig));
        }
    }

    /**
     * As {@link #swigluBackward(double[], double[], double[], double[], double[], int, int)} on
     * float32 (FLOAT models), computed in double with {@link #expFloat}; sig [to] double scratch.
     */
    static void swigluBackward(float[] g, float[] u, float[] da, float[] dg, float[] du, double[] sig, int from,
                               int to) {
        // Three loops, as in the forward: exp alone over doubles.
        for (int i = from; i < to; i++) {
            sig[i] = -(double) g[i];
        }
        expFloatInPlace(sig, from, to);
        for (int i = from; i < to; i++) {
            double x = g[i];
            double sg = 1.0 / (1.0 + sig[i]);
            double d = da[i];
            du[i] = (float) (d * (x * sg));
            dg[i] = (float) (d * u[i] * sg * (1.0 + x * (1.0 - sg)));
        }
    }
}

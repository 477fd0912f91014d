package org.lora4j.train.analysis;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * The phase-transition metrics defined in docs/research.md (Turner, Soligo et al., "Model Organisms
 * for Emergent Misalignment", 2025), computed from adapter snapshots: a sequence of raw,
 * unnormalised vectors (a B or an A, flattened) taken every {@code stride} optimizer steps.
 */
public final class Trajectory {
    private final int[] steps;
    private final double[][] vectors;

    /**
     * @param steps   the optimizer step of each snapshot, strictly increasing
     * @param vectors one flattened vector per snapshot, all the same length
     */
    public Trajectory(int[] steps, List<double[]> vectors) {
        Objects.requireNonNull(steps, "steps");
        if (steps.length != vectors.size() || steps.length == 0) {
            throw new IllegalArgumentException("need one vector per step, got " + steps.length + " steps and "
                    + vectors.size() + " vectors");
        }
        int dim = vectors.get(0).length;
        for (int i = 0; i < steps.length; i++) {
            if (vectors.get(i).length != dim) {
                throw new IllegalArgumentException("snapshot at step " + steps[i] + " has " + vectors.get(i).length
                        + " values, the first has " + dim);
            }
            if (i > 0 && steps[i] <= steps[i - 1]) {
                throw new IllegalArgumentException("steps must increase: " + steps[i - 1] + " then " + steps[i]);
            }
        }
        this.steps = steps.clone();
        this.vectors = vectors.stream().map(double[]::clone).toArray(double[][]::new);
    }

    public int size() {
        return steps.length;
    }

    public int[] steps() {
        return steps.clone();
    }

    /** ‖B_t‖ per snapshot: grows smoothly and carries no transition signal (section 2). */
    public double[] norms() {
        double[] n = new double[steps.length];
        for (int i = 0; i < n.length; i++) {
            n[i] = norm(vectors[i]);
        }
        return n;
    }

    /** One point of {@link #localCosine}: the snapshot's step and its LCS value. */
    public record Point(int step, double value) {
    }

    /**
     * Local cosine similarity with lag k (in snapshots): {@code LCS_k(t) = cos(B_(t-k) - B_t,
     * B_(t+k) - B_t)}, -1 on a straight path, 0 at a right-angle turn, +1 at a reversal; kept only
     * where {@code max(‖B_t - B_(t-k)‖, ‖B_(t+k) - B_t‖) > eps} (0.0035 in the paper).
     */
    public List<Point> localCosine(int k, double eps) {
        if (k < 1) {
            throw new IllegalArgumentException("lag k must be >= 1, got " + k);
        }
        List<Point> out = new ArrayList<>();
        for (int t = k; t + k < steps.length; t++) {
            double[] back = sub(vectors[t - k], vectors[t]);
            double[] fwd = sub(vectors[t + k], vectors[t]);
            double nb = norm(back);
            double nf = norm(fwd);
            if (Math.max(nb, nf) <= eps || nb == 0 || nf == 0) {
                continue;
            }
            out.add(new Point(steps[t], dot(back, fwd) / (nb * nf)));
        }
        return out;
    }

    /**
     * {@link #localCosine} with the lag {@code k} in optimizer steps, as the paper counts it: LCS_k(t)
     * for every snapshot step t that has snapshots at exactly t - k and t + k. Snapshots off the
     * regular grid (the last step of a run, saved whatever the interval) are used only where those
     * steps exist, so the lag is always k steps.
     */
    public List<Point> localCosineInSteps(int k, double eps) {
        if (k < 1) {
            throw new IllegalArgumentException("lag k must be >= 1 step, got " + k);
        }
        java.util.Map<Integer, Integer> index = new java.util.HashMap<>();
        for (int i = 0; i < steps.length; i++) {
            index.put(steps[i], i);
        }
        List<Point> out = new ArrayList<>();
        for (int t = 0; t < steps.length; t++) {
            Integer before = index.get(steps[t] - k);
            Integer after = index.get(steps[t] + k);
            if (before == null || after == null) {
                continue;
            }
            double[] back = sub(vectors[before], vectors[t]);
            double[] fwd = sub(vectors[after], vectors[t]);
            double nb = norm(back);
            double nf = norm(fwd);
            if (Math.max(nb, nf) <= eps || nb == 0 || nf == 0) {
                continue;
            }
            out.add(new Point(steps[t], dot(back, fwd) / (nb * nf)));
        }
        return out;
    }

    /** The step where LCS_k peaks (the sharpest turn), or -1 when no point passes the eps filter. */
    public int transitionStep(int k, double eps) {
        return localCosine(k, eps).stream().max(java.util.Comparator.comparingDouble(Point::value))
                .map(Point::step).orElse(-1);
    }

    /**
     * {@code comp(t) = ‖B_tᵀ B_final‖_F / (‖B_t‖_F ‖B_final‖_F)} for matrices [out, rank] (the
     * multi-layer comparison of section 2); the vectors are read as row-major [rows, cols].
     */
    public double[] compWithFinal(int rows, int cols) {
        if ((long) rows * cols != vectors[0].length) {
            throw new IllegalArgumentException("rows x cols = " + rows + " x " + cols + " but vectors have "
                    + vectors[0].length + " values");
        }
        double[] fin = vectors[vectors.length - 1];
        double[] out = new double[steps.length];
        for (int s = 0; s < steps.length; s++) {
            double[] b = vectors[s];
            double frob = 0;
            for (int i = 0; i < cols; i++) {
                for (int j = 0; j < cols; j++) {
                    double m = 0;   // (B_tᵀ B_final)[i, j]
                    for (int r = 0; r < rows; r++) {
                        m += b[r * cols + i] * fin[r * cols + j];
                    }
                    frob += m * m;
                }
            }
            double denom = norm(b) * norm(fin);
            out[s] = denom == 0 ? 0 : Math.sqrt(frob) / denom;
        }
        return out;
    }

    /**
     * Principal components of the stacked snapshots (mean-centred), as in section 2: the turn shows
     * in PC2. Returns the projections [snapshot][component] and the explained variance ratios.
     */
    public Pca pca(int components) {
        int n = steps.length;
        int dim = vectors[0].length;
        if (components < 1 || components > Math.min(n, dim)) {
            throw new IllegalArgumentException("components must be in [1, " + Math.min(n, dim) + "], got " + components);
        }
        double[] mean = new double[dim];
        for (double[] v : vectors) {
            for (int j = 0; j < dim; j++) {
                mean[j] += v[j] / n;
            }
        }
        double[][] x = new double[n][dim];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < dim; j++) {
                x[i][j] = vectors[i][j] - mean[j];
            }
        }
        // Gram matrix (n x n) is small: snapshots are few compared with the vector length.
        double[][] gram = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                gram[i][j] = gram[j][i] = dot(x[i], x[j]);
            }
        }
        return pcaOfCentredGram(gram, components);
    }

    /**
     * PCA from the Gram matrix of mean-centred vectors ({@code gram[i][j] = x_i · x_j}): the scores
     * are the leading eigenvectors scaled by the square roots of their eigenvalues, the ratios the
     * eigenvalues over the trace. {@code gram} is overwritten (deflated).
     */
    static Pca pcaOfCentredGram(double[][] gram, int components) {
        int n = gram.length;
        double total = 0;
        for (int i = 0; i < n; i++) {
            total += gram[i][i];
        }
        double[][] proj = new double[n][components];
        double[] ratio = new double[components];
        for (int c = 0; c < components; c++) {
            double[] u = powerIteration(gram, c);
            double lambda = dot(u, matVec(gram, u));
            ratio[c] = total == 0 ? 0 : lambda / total;
            double s = Math.sqrt(Math.max(lambda, 0));
            for (int i = 0; i < n; i++) {
                proj[i][c] = u[i] * s;      // score of snapshot i on component c
            }
            for (int i = 0; i < n; i++) {   // deflate
                for (int j = 0; j < n; j++) {
                    gram[i][j] -= lambda * u[i] * u[j];
                }
            }
        }
        return new Pca(proj, ratio);
    }

    /** Scores [snapshot][component] and explained-variance ratios. */
    public record Pca(double[][] scores, double[] explainedVarianceRatio) {
    }

    private static double[] powerIteration(double[][] m, int salt) {
        int n = m.length;
        double[] v = new double[n];
        java.util.SplittableRandom rng = new java.util.SplittableRandom(17 + salt);
        for (int i = 0; i < n; i++) {
            v[i] = rng.nextDouble() - 0.5;
        }
        for (int it = 0; it < 1000; it++) {
            double[] w = matVec(m, v);
            double nw = norm(w);
            if (nw == 0) {
                return v;
            }
            for (int i = 0; i < n; i++) {
                w[i] /= nw;
            }
            double diff = norm(sub(w, v));
            v = w;
            if (diff < 1e-13) {
                break;
            }
        }
        // Fix the sign so runs are comparable: the largest-magnitude entry is positive.
        int arg = 0;
        for (int i = 1; i < n; i++) {
            if (Math.abs(v[i]) > Math.abs(v[arg])) {
                arg = i;
            }
        }
        if (v[arg] < 0) {
            for (int i = 0; i < n; i++) {
                v[i] = -v[i];
            }
        }
        return v;
    }

    private static double[] matVec(double[][] m, double[] v) {
        double[] out = new double[m.length];
        for (int i = 0; i < m.length; i++) {
            out[i] = dot(m[i], v);
        }
        return out;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    static double norm(double[] a) {
        return Math.sqrt(dot(a, a));
    }

    private static double[] sub(double[] a, double[] b) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i] - b[i];
        }
        return d;
    }

    /** Signed cosine of two vectors (section 3's comparison of directions across fine-tunes). */
    public static double cosine(double[] a, double[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("vectors of length " + a.length + " and " + b.length);
        }
        double d = norm(a) * norm(b);
        return d == 0 ? 0 : dot(a, b) / d;
    }

    @Override
    public String toString() {
        return "Trajectory[" + steps.length + " snapshots, steps " + Arrays.toString(new int[]{steps[0], steps[steps.length - 1]}) + "]";
    }
}

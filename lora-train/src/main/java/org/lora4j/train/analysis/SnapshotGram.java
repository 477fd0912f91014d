package org.lora4j.train.analysis;

import org.lora4j.core.PeftKeys;
import org.lora4j.core.SafetensorsFile;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The inner products of a run's stacked snapshots, read one module at a time: for the stacked B
 * and the stacked A, the Gram matrix {@code G[i][j] = v_i · v_j} over snapshots i, j, and for B the
 * [rank, rank] products {@code B_tᵀ B_final} summed over modules. Every trajectory metric of
 * {@link TrajectoryReport} is a function of these, so memory is one module's snapshots plus
 * n x n numbers, not every module of every snapshot at once (an adapter on every layer of a
 * 0.5B model is ~80 MB of B per snapshot in double). {@link Snapshots#stack} followed by
 * {@link Trajectory} computes the same numbers from the vectors themselves; the tests compare them.
 */
final class SnapshotGram {
    final int[] steps;
    final double[][] gramB;     // [n, n]
    final double[][] gramA;     // [n, n]
    final double[][][] crossB;  // [n][rank][rank]: Σ_m B_m,tᵀ B_m,final; null when ranks differ
    final int rank;             // the modules' common rank, -1 when they differ

    private SnapshotGram(int[] steps, double[][] gramB, double[][] gramA, double[][][] crossB, int rank) {
        this.steps = steps;
        this.gramB = gramB;
        this.gramA = gramA;
        this.crossB = crossB;
        this.rank = rank;
    }

    /**
     * Reads the snapshots of {@code dir} for {@code modules} (each must be in every snapshot).
     *
     * @throws IllegalArgumentException naming the file and listing the modules there, for a module missing
     */
    static SnapshotGram read(Path dir, List<String> modules) throws IOException {
        List<Path> files = Snapshots.files(dir);
        int n = files.size();
        int[] steps = new int[n];
        for (int i = 0; i < n; i++) {
            steps[i] = Snapshots.stepOf(files.get(i));
        }
        double[][] gramB = new double[n][n];
        double[][] gramA = new double[n][n];
        int rank = 0;
        double[][][] cross = null;
        for (String module : modules) {
            Module[] ba = load(files, module);
            Module b = ba[0];
            Module a = ba[1];
            accumulate(gramB, b.vectors);
            accumulate(gramA, a.vectors);
            int r = (int) b.cols;
            rank = rank == 0 ? r : (rank == r ? rank : -1);
            if (rank > 0) {
                if (cross == null) {
                    cross = new double[n][r][r];
                }
                addCross(cross, b.vectors, (int) b.rows, r);
            }
        }
        return new SnapshotGram(steps, gramB, gramA, rank > 0 ? cross : null, rank);
    }

    /** One module's factor across the snapshots: n flattened row-major [rows, cols] matrices. */
    private record Module(double[][] vectors, long rows, long cols) {
    }

    /** One module's B and A across the snapshots, each file opened once. */
    private static Module[] load(List<Path> files, String module) throws IOException {
        PeftKeys.Factor[] factors = {PeftKeys.Factor.B, PeftKeys.Factor.A};
        double[][][] vectors = new double[2][files.size()][];
        long[][] shapes = new long[2][];
        for (int i = 0; i < files.size(); i++) {
            Path file = files.get(i);
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                for (int w = 0; w < 2; w++) {
                    String key = PeftKeys.saved(module, factors[w]);
                    if (!f.keys().contains(key)) {
                        throw new IllegalArgumentException(file + ": module '" + module + "' is not in this snapshot;"
                                + " adapted modules there: " + Snapshots.modulesIn(f));
                    }
                    long[] s = f.shape(key);
                    if (s.length != 2) {
                        throw new IOException(file + ": " + key + " has shape " + Arrays.toString(s) + ", expected a matrix");
                    }
                    if (shapes[w] == null) {
                        shapes[w] = s;
                    } else if (!Arrays.equals(shapes[w], s)) {
                        throw new IOException(file + ": " + key + " has shape " + Arrays.toString(s) + ", but "
                                + files.get(0).getFileName() + " has " + Arrays.toString(shapes[w]));
                    }
                    INDArray t = f.get(key, DataType.DOUBLE);
                    vectors[w][i] = t.reshape(t.length()).toDoubleVector();   // row-major [rows, cols], flattened
                }
            }
        }
        return new Module[]{new Module(vectors[0], shapes[0][0], shapes[0][1]), new Module(vectors[1], shapes[1][0], shapes[1][1])};
    }

    private static void accumulate(double[][] gram, double[][] v) {
        int n = v.length;
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                double d = Trajectory.dot(v[i], v[j]);
                gram[i][j] += d;
                if (j != i) {
                    gram[j][i] += d;
                }
            }
        }
    }

    /** cross[t] += B_tᵀ B_final for one module's B [rows, r]. */
    private static void addCross(double[][][] cross, double[][] b, int rows, int r) {
        double[] fin = b[b.length - 1];
        for (int t = 0; t < b.length; t++) {
            double[] bt = b[t];
            for (int row = 0; row < rows; row++) {
                int at = row * r;
                for (int i = 0; i < r; i++) {
                    double x = bt[at + i];
                    if (x == 0) {
                        continue;
                    }
                    for (int j = 0; j < r; j++) {
                        cross[t][i][j] += x * fin[at + j];
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // The metrics, from the inner products

    /** ‖v_i‖ per snapshot. */
    static double[] norms(double[][] gram) {
        double[] out = new double[gram.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = Math.sqrt(Math.max(gram[i][i], 0));
        }
        return out;
    }

    /**
     * LCS_k with k in steps, exactly as {@link Trajectory#localCosineInSteps}, from the Gram matrix:
     * with a = t - k, b = t, c = t + k, {@code (v_a - v_b)·(v_c - v_b) = G_ac - G_ab - G_bc + G_bb}
     * and {@code ‖v_a - v_b‖² = G_aa - 2 G_ab + G_bb}.
     */
    static List<Trajectory.Point> localCosine(int[] steps, double[][] g, int k, double eps) {
        java.util.Map<Integer, Integer> index = new java.util.HashMap<>();
        for (int i = 0; i < steps.length; i++) {
            index.put(steps[i], i);
        }
        List<Trajectory.Point> out = new ArrayList<>();
        for (int b = 0; b < steps.length; b++) {
            Integer a = index.get(steps[b] - k);
            Integer c = index.get(steps[b] + k);
            if (a == null || c == null) {
                continue;
            }
            double nb = Math.sqrt(Math.max(g[a][a] - 2 * g[a][b] + g[b][b], 0));
            double nf = Math.sqrt(Math.max(g[c][c] - 2 * g[b][c] + g[b][b], 0));
            if (Math.max(nb, nf) <= eps || nb == 0 || nf == 0) {
                continue;
            }
            double cos = (g[a][c] - g[a][b] - g[b][c] + g[b][b]) / (nb * nf);
            out.add(new Trajectory.Point(steps[b], Math.max(-1, Math.min(1, cos))));
        }
        return out;
    }

    /** PCA of the mean-centred vectors, as {@link Trajectory#pca}: the Gram matrix centred, J G J. */
    static Trajectory.Pca pca(double[][] g, int components) {
        int n = g.length;
        double[] rowMean = new double[n];
        double mean = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                rowMean[i] += g[i][j] / n;
            }
            mean += rowMean[i] / n;
        }
        double[][] c = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                c[i][j] = g[i][j] - rowMean[i] - rowMean[j] + mean;
            }
        }
        return Trajectory.pcaOfCentredGram(c, components);
    }

    /** comp(t) = ‖B_tᵀ B_final‖_F / (‖B_t‖_F ‖B_final‖_F), 0 when a norm is 0. */
    double[] comp() {
        int n = steps.length;
        double[] out = new double[n];
        double fin = Math.sqrt(Math.max(gramB[n - 1][n - 1], 0));
        for (int t = 0; t < n; t++) {
            double frob = 0;
            for (double[] row : crossB[t]) {
                for (double v : row) {
                    frob += v * v;
                }
            }
            double denom = Math.sqrt(Math.max(gramB[t][t], 0)) * fin;
            out[t] = denom == 0 ? 0 : Math.sqrt(frob) / denom;
        }
        return out;
    }
}

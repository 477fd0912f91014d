package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Rotary position embeddings in Hugging Face's rotate_half convention (the pair of feature f is
 * f + hd/2): the inverse frequencies with {@code rope_scaling} applied, the cos/sin tables, and the
 * rotation of queries or keys at given positions, forward and backward (its transpose).
 *
 * <p>One instance serves every layer: the tables depend only on the configuration and grow to the
 * longest position used so far. Not thread-safe (apply's scratch is reused from call to call).
 */
final class Rope {
    private final int hd;
    private final double[] invFreq;         // [hd/2]
    private double[] cos = new double[0];   // [position·hd/2 + f]
    private double[] sin = new double[0];
    private int positions;
    private double[] pair = new double[0];  // [2n] apply's scratch: one pair of feature columns

    Rope(ModelConfig config) {
        this.hd = config.headDim();
        this.invFreq = inverseFrequencies(config);
    }

    /** inv_freq as Hugging Face computes it, with the "linear" or "llama3" rope_scaling applied. */
    static double[] inverseFrequencies(ModelConfig c) {
        int half = c.headDim() / 2;
        double[] inv = new double[half];
        for (int f = 0; f < half; f++) {
            inv[f] = 1.0 / Math.pow(c.ropeTheta(), (2.0 * f) / c.headDim());
        }
        ModelConfig.RopeScaling s = c.ropeScaling();
        if (s == null) {
            return inv;
        }
        if (s.type().equals("linear")) {
            for (int f = 0; f < half; f++) {
                inv[f] /= s.factor();
            }
            return inv;
        }
        // llama3: transformers' _compute_llama3_parameters
        double old = s.originalMaxPositionEmbeddings();
        double lowWavelen = old / s.lowFreqFactor();
        double highWavelen = old / s.highFreqFactor();
        for (int f = 0; f < half; f++) {
            double wavelen = 2 * Math.PI / inv[f];
            if (wavelen > lowWavelen) {
                inv[f] = inv[f] / s.factor();
            } else if (wavelen >= highWavelen) {
                double smooth = (old / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                inv[f] = (1 - smooth) * inv[f] / s.factor() + smooth * inv[f];
            }
        }
        return inv;
    }

    /** Makes the tables cover positions 0..count − 1. */
    void ensure(int count) {
        if (count <= positions) {
            return;
        }
        int half = hd / 2;
        double[] c = new double[count * half];
        double[] s = new double[count * half];
        for (int p = 0; p < count; p++) {
            for (int f = 0; f < half; f++) {
                double angle = p * invFreq[f];
                c[p * half + f] = Math.cos(angle);
                s[p * half + f] = Math.sin(angle);
            }
        }
        cos = c;
        sin = s;
        positions = count;
    }

    /**
     * Rotates x [n, heads·hd] (native, 'f') in place: row {@code b·seq + t} is at position
     * {@code past + t} (training and prefill), or, when {@code rowPositions} is not null, row r at
     * {@code rowPositions[r]} (a decode step of many sequences). sign +1 applies the rotation, −1
     * its transpose (the backward). One pair of feature columns at a time goes through a small
     * double scratch (it stays in L1) and straight back, instead of a copy of the whole array.
     */
    void apply(INDArray x, int n, int seq, int heads, int past, int[] rowPositions, double sign) {
        NativeBuffer buf = NativeBuffer.of(x);
        if (pair.length < 2 * n) {
            pair = new double[2 * n];
        }
        int half = hd / 2;
        for (int h = 0; h < heads; h++) {
            for (int f = 0; f < half; f++) {
                long o1 = (long) (h * hd + f) * n;
                long o2 = (long) (h * hd + f + half) * n;
                buf.read(o1, pair, 0, n);
                buf.read(o2, pair, n, n);
                rotateColumns(pair, 0, n, n, seq, past, rowPositions, f, half, cos, sin, sign);
                buf.write(pair, 0, o1, n);
                buf.write(pair, n, o2, n);
            }
        }
    }

    /**
     * In place on x [n, heads·hd]: rows are {@code b·seq + t} at position {@code past + t}.
     * cos/sin [position·half + f]. sign +1 applies the rotation, −1 its transpose (the backward).
     */
    static void rope(double[] x, int n, int seq, int heads, int hd, int past, double[] cos, double[] sin, double sign) {
        int half = hd / 2;
        for (int h = 0; h < heads; h++) {
            for (int f = 0; f < half; f++) {
                rotateColumns(x, (h * hd + f) * n, (h * hd + f + half) * n, n, seq, past, null, f, half, cos, sin,
                        sign);
            }
        }
    }

    /**
     * Rotates feature f's column (at x[o1..]) with its pair f + half (at x[o2..]), n rows: row
     * {@code b·seq + t} at position past + t, or row r at position[r] when position is not null.
     */
    private static void rotateColumns(double[] x, int o1, int o2, int n, int seq, int past, int[] position, int f,
                                      int half, double[] cos, double[] sin, double sign) {
        if (position != null) {
            for (int r = 0; r < n; r++) {
                int p = position[r] * half + f;
                rotate(x, o1 + r, o2 + r, cos[p], sign * sin[p]);
            }
            return;
        }
        for (int r0 = 0; r0 < n; r0 += seq) {
            for (int t = 0; t < seq; t++) {
                int p = (past + t) * half + f;
                rotate(x, o1 + r0 + t, o2 + r0 + t, cos[p], sign * sin[p]);
            }
        }
    }

    private static void rotate(double[] x, int i1, int i2, double cs, double sn) {
        double a = x[i1];
        double b = x[i2];
        x[i1] = a * cs - b * sn;
        x[i2] = b * cs + a * sn;
    }
}

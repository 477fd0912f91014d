package org.lora4j.train.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Objects;

/**
 * Reads or rewrites the residual stream after one decoder block, during evaluation, generation
 * and training ({@link DecoderModel#addResidualHook}).
 *
 * <p>{@code hidden} is [n, d_model] with one row per token, row {@code b·seq + t}; in generation
 * with the KV cache, only the new tokens' rows are passed, and a {@link Generator} call prefills a
 * prompt that several of its requests share once (a hook that counts rows sees it once). {@code tokenMask} [n] holds the mask the
 * caller gave the forward pass (the loss mask of {@link DecoderModel#loss}; all true when none was
 * given and in generation, except the padding rows of a {@link Generator} prefill, where prompts
 * shorter than the longest of their pass are padded at the end). The array is valid only during
 * the call.
 *
 * <p>The model keeps the stream in double and hands hooks a copy in its own type (FLOAT or
 * DOUBLE); elements a hook leaves as they were keep their double value, so a hook that only reads
 * ({@link Capture}) leaves the logits bit for bit as they are without it.
 */
public interface ResidualHook {

    /** Called after block {@code layer}; may change {@code hidden} in place. */
    void forward(int layer, INDArray hidden, boolean[] tokenMask);

    /**
     * Turns the gradient with respect to the hook's output into the gradient with respect to its
     * input, in place. The default (identity) is right for hooks that only read or add a constant.
     */
    default void backward(int layer, INDArray dHidden) {
    }

    /** Steering, {@code h <- h + lambda · v} at every position. */
    final class AddVector implements ResidualHook {
        private final INDArray vector;  // [1, d]
        private final double[] v;       // the same, in double
        private final double lambda;
        private final HookStream stream = new HookStream();

        public AddVector(INDArray vector, double lambda) {
            this.vector = Objects.requireNonNull(vector, "vector").reshape(1, vector.length());
            this.v = this.vector.castTo(DataType.DOUBLE).toDoubleVector();
            this.lambda = lambda;
        }

        @Override
        public void forward(int layer, INDArray hidden, boolean[] tokenMask) {
            checkWidth(hidden, vector.length());
            if (!HookStream.isColumnMajor(hidden)) {
                hidden.addiRowVector(vector.castTo(hidden.dataType()).mul(lambda));
                return;
            }
            // The model hands hooks a column-major [n, d] buffer: a Java loop, where ND4J ops would
            // allocate and dispatch at every layer of every decode step.
            int n = (int) hidden.size(0);
            int d = (int) hidden.size(1);
            double[] h = stream.read(hidden);
            for (int c = 0; c < d; c++) {
                double add = lambda * v[c];
                for (int r = 0, i = c * n; r < n; r++, i++) {
                    h[i] += add;
                }
            }
            stream.write(hidden);
        }
    }

    /**
     * Directional ablation, {@code h <- h − (h·r) r} with r the unit direction, at every position;
     * its backward is the same projection (I − r rᵀ is symmetric).
     */
    final class ProjectOut implements ResidualHook {
        private final INDArray unit;  // [d, 1] double
        private final double[] u;     // the same, as a Java array
        private final HookStream stream = new HookStream();
        private double[] coef = new double[0];

        public ProjectOut(INDArray direction) {
            INDArray r = Objects.requireNonNull(direction, "direction").castTo(DataType.DOUBLE).reshape(direction.length(), 1);
            double norm = r.norm2Number().doubleValue();
            if (!(norm > 0) || !Double.isFinite(norm)) {
                throw new IllegalArgumentException("direction must have a finite, non-zero norm, got " + norm);
            }
            this.unit = r.div(norm);
            this.u = unit.toDoubleVector();
        }

        @Override
        public void forward(int layer, INDArray hidden, boolean[] tokenMask) {
            project(hidden);
        }

        @Override
        public void backward(int layer, INDArray dHidden) {
            project(dHidden);
        }

        private void project(INDArray h) {
            checkWidth(h, unit.length());
            if (HookStream.isColumnMajor(h)) {
                projectColumnMajor(h);
                return;
            }
            INDArray r = unit.castTo(h.dataType());
            INDArray coef = Nd4j.create(h.dataType(), new long[]{h.size(0), 1}, 'f');
            Nd4j.gemm(h, r, coef, false, false, 1.0, 0.0);           // h·r        [n, 1]
            INDArray along = Nd4j.create(h.dataType(), h.shape(), 'f');
            Nd4j.gemm(coef, r, along, false, true, 1.0, 0.0);        // (h·r) rᵀ   [n, d]
            h.subi(along);
        }

        /** h - (h·r) rᵀ on a column-major [n, d] buffer, in double, without allocating per call. */
        private void projectColumnMajor(INDArray hidden) {
            int n = (int) hidden.size(0);
            int d = (int) hidden.size(1);
            double[] h = stream.read(hidden);
            if (coef.length < n) {
                coef = new double[n];
            }
            java.util.Arrays.fill(coef, 0, n, 0.0);
            for (int c = 0; c < d; c++) {                            // coef = h·r   [n]
                double rc = u[c];
                for (int r = 0, i = c * n; r < n; r++, i++) {
                    coef[r] += h[i] * rc;
                }
            }
            for (int c = 0; c < d; c++) {                            // h -= coef rᵀ
                double rc = u[c];
                for (int r = 0, i = c * n; r < n; r++, i++) {
                    h[i] -= coef[r] * rc;
                }
            }
            stream.write(hidden);
        }
    }

    /**
     * Sums the hidden states of the masked tokens, pooled over tokens (not over examples), for
     * mean-difference directions: {@code v = mean(set A) − mean(set B)}. Does not change the stream.
     */
    final class Capture implements ResidualHook {
        private double[] sum;
        private long count;

        @Override
        public void forward(int layer, INDArray hidden, boolean[] tokenMask) {
            int n = (int) hidden.size(0);
            int d = (int) hidden.size(1);
            if (sum == null) {
                sum = new double[d];
            }
            checkWidth(hidden, sum.length);
            double[][] h = null;
            for (int r = 0; r < n; r++) {
                if (tokenMask == null || tokenMask[r]) {
                    if (h == null) {
                        // One bulk read, and only when a row is pooled: an element-wise getDouble is
                        // a native call each, which made a 0.5B model's capture take minutes.
                        h = hidden.toDoubleMatrix();   // [n, d]
                    }
                    double[] row = h[r];
                    for (int c = 0; c < d; c++) {
                        sum[c] += row[c];
                    }
                    count++;
                }
            }
        }

        /** The mean hidden state [d] over the pooled tokens. */
        public double[] meanVector() {
            if (count == 0) {
                throw new IllegalStateException("no tokens captured");
            }
            double[] m = sum.clone();
            for (int c = 0; c < m.length; c++) {
                m[c] /= count;
            }
            return m;
        }

        /** Tokens pooled so far. */
        public long count() {
            return count;
        }

        /** The mean hidden state [d] over the pooled tokens, as DOUBLE. */
        public INDArray mean() {
            return Nd4j.createFromArray(meanVector());
        }

        public void reset() {
            sum = null;
            count = 0;
        }
    }

    private static void checkWidth(INDArray hidden, long d) {
        if (hidden.size(1) != d) {
            throw new IllegalArgumentException("hook vector has " + d + " elements but the hidden state is "
                    + java.util.Arrays.toString(hidden.shape()));
        }
    }
}

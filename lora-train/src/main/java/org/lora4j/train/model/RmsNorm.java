package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.train.optim.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import org.lora4j.core.internal.Threads;

/**
 * RMSNorm, {@code y = w ∘ x / sqrt(mean(x²) + eps)}, over rows of a column-major [n, d] double
 * activation ({@link Kernels}' layout): its weight, the weight's gradient in full fine-tuning, and
 * what the forward saves for the backward (the input and each row's 1 / rms).
 *
 * <p>Rows run in parallel in blocks of {@link #ROWS}: each row's arithmetic is the same in any
 * block, and the weight gradient's partial sums are added block by block in order, so results do
 * not depend on the core count.
 */
final class RmsNorm {
    /** Rows per parallel block; fixed, not derived from the core count (see the class comment). */
    private static final int ROWS = 256;

    private final String name;
    private final INDArray weight;      // [d]
    private INDArray grad;              // [d] in full fine-tuning, else null
    private final double eps;
    private final int d;
    private double[] x = new double[0]; // [n, d] the saved input
    private double[] rstd = new double[0]; // [n]
    private double[] scratch = new double[0]; // [n]
    private int n;

    RmsNorm(String name, INDArray weight, double eps) {
        this.name = name;
        this.weight = weight;
        this.eps = eps;
        this.d = (int) weight.length();
    }

    /** Hugging Face's parameter name, e.g. {@code model.layers.0.input_layernorm.weight}. */
    String name() {
        return name;
    }

    INDArray weight() {
        return weight;
    }

    /** The weight's gradient, null while the weight is frozen. */
    INDArray grad() {
        return grad;
    }

    /** The weight with its gradient, for an optimizer (full fine-tuning). */
    Parameter parameter() {
        return new Parameter(name, weight, grad);
    }

    void setTrainable(boolean trainable) {
        grad = trainable ? Nd4j.zeros(weight.dataType(), d) : null;
    }

    void zeroGrad() {
        if (grad != null) {
            grad.assign(0);
        }
    }

    /** y [n, d] = norm(x [n, d]); saves x and the row scales for {@link #backward}. y may not alias x. */
    void forward(double[] xIn, int rows, double[] y) {
        ensure(rows);
        System.arraycopy(xIn, 0, x, 0, rows * d);
        double[] w = weightOnHost();
        Threads.parallelFor(blocks(rows), blk -> Kernels.rmsNormForward(x, w, eps, rows, d, y, rstd,
                blk * ROWS, Math.min(rows, (blk + 1) * ROWS)));
    }

    /** dx [n, d] += the input gradient of the last forward for dy [n, d]; the weight gradient accumulates. */
    void backward(double[] dy, double[] dx) {
        int rows = n;
        double[] w = weightOnHost();
        int blocks = blocks(rows);
        double[][] parts = grad == null ? null : new double[blocks][d];
        Threads.parallelFor(blocks, blk -> Kernels.rmsNormBackward(x, w, rstd, dy, rows, d, dx,
                parts == null ? null : parts[blk], scratch, blk * ROWS, Math.min(rows, (blk + 1) * ROWS)));
        if (parts != null) {
            double[] dw = new double[d];
            for (double[] p : parts) {
                for (int c = 0; c < d; c++) {
                    dw[c] += p[c];
                }
            }
            NativeBuffer.add(dw, grad, d);
        }
    }

    private static int blocks(int rows) {
        return (rows + ROWS - 1) / ROWS;
    }

    private void ensure(int rows) {
        if (x.length < rows * d) {
            x = new double[rows * d];
            rstd = new double[rows];
            scratch = new double[rows];
        }
        n = rows;
    }

    /** The weight as doubles, read at every pass: the optimizer updates it in place between passes. */
    private double[] weightOnHost() {
        double[] w = new double[d];
        NativeBuffer.read(weight, w, d);
        return w;
    }
}

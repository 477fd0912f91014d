package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.train.optim.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import org.lora4j.core.internal.Threads;

/**
 * RMSNorm, {@code y = w ∘ x / sqrt(mean(x²) + eps)}, over rows of a column-major [n, d] double
 * activation ({@link Kernels}' layout), the output and its gradient in native memory (the linear
 * layers' buffers): its weight, the weight's gradient in full fine-tuning, and
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
    private final double[] wHost;       // [d] the weight as doubles, read at every pass
    private final double[] dwSum;       // [d] the weight gradient of one backward
    private double[][] dwParts = new double[0][];   // [blocks][d] its per-block parts
    private double[][] slotBufs = new double[0][];  // [slot][ROWS·d] a block of output or dy
    private int n;

    RmsNorm(String name, INDArray weight, double eps) {
        this.name = name;
        this.weight = weight;
        this.eps = eps;
        this.d = (int) weight.length();
        this.wHost = new double[d];
        this.dwSum = new double[d];
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

    /**
     * out [n, d] (native, 'f', from its first element: the next linear layer's input buffer) =
     * norm(x [n, d]); saves x and the row scales for {@link #backward}. Each block of rows is
     * normalised into its slot's double scratch and written out column by column, so no [n, d]
     * double copy of the output is made.
     */
    void forward(double[] xIn, int rows, INDArray out) {
        ensure(rows);
        System.arraycopy(xIn, 0, x, 0, rows * d);
        readWeight();
        double[] w = wHost;
        NativeBuffer y = NativeBuffer.of(out);
        int blocks = blocks(rows);
        double[][] bufs = slotBuffers(blocks);
        int parts = bufs.length;
        Threads.parallelFor(parts, part -> {
            double[] buf = bufs[part];
            for (int blk = Threads.rangeStart(part, parts, blocks); blk < Threads.rangeStart(part + 1, parts, blocks); blk++) {
                int r0 = blk * ROWS;
                int r1 = Math.min(rows, r0 + ROWS);
                int m = r1 - r0;
                Kernels.rmsNormForward(x, w, eps, rows, d, buf, m, r0, rstd, r0, r1);
                for (int c = 0; c < d; c++) {
                    y.write(buf, c * m, (long) c * rows + r0, m);
                }
            }
        });
    }

    /**
     * dx [n, d] += the input gradient of the last forward for dy [n, d] (native, 'f', from its
     * first element); the weight gradient accumulates. Each block of rows of dy is read into its
     * slot's double scratch (it stays in cache for the kernel's two passes).
     */
    void backward(INDArray dyArr, double[] dx) {
        int rows = n;
        readWeight();
        double[] w = wHost;
        NativeBuffer dy = NativeBuffer.of(dyArr);
        int blocks = blocks(rows);
        double[][] bufs = slotBuffers(blocks);
        int parts = bufs.length;
        double[][] partial = grad == null ? null : partials(blocks);
        Threads.parallelFor(parts, part -> {
            double[] buf = bufs[part];
            for (int blk = Threads.rangeStart(part, parts, blocks); blk < Threads.rangeStart(part + 1, parts, blocks); blk++) {
                int r0 = blk * ROWS;
                int r1 = Math.min(rows, r0 + ROWS);
                int m = r1 - r0;
                for (int c = 0; c < d; c++) {
                    dy.read((long) c * rows + r0, buf, c * m, m);
                }
                Kernels.rmsNormBackward(x, w, rstd, buf, m, r0, rows, d, dx, partial == null ? null : partial[blk],
                        scratch, r0, r1);
            }
        });
        if (partial != null) {
            java.util.Arrays.fill(dwSum, 0.0);
            for (int blk = 0; blk < blocks; blk++) {   // in block order: the same sum on any core count
                double[] p = partial[blk];
                for (int c = 0; c < d; c++) {
                    dwSum[c] += p[c];
                }
            }
            NativeBuffer.add(dwSum, grad, d);
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

    /** One [ROWS, d] double scratch per work slot of a loop over {@code blocks} blocks of rows. */
    private double[][] slotBuffers(int blocks) {
        int parts = Threads.slots(blocks);
        if (slotBufs.length != parts) {
            double[][] b = java.util.Arrays.copyOf(slotBufs, parts);
            for (int i = slotBufs.length; i < parts; i++) {
                b[i] = new double[ROWS * d];
            }
            slotBufs = b;
        }
        return slotBufs;
    }

    /** The per-block partial weight gradients, zeroed. */
    private double[][] partials(int blocks) {
        if (dwParts.length < blocks) {
            dwParts = new double[blocks][d];
        }
        for (int blk = 0; blk < blocks; blk++) {
            java.util.Arrays.fill(dwParts[blk], 0.0);
        }
        return dwParts;
    }

    /** Reads the weight as doubles at every pass: the optimizer updates it in place between passes. */
    private void readWeight() {
        NativeBuffer.read(weight, wHost, d);
    }
}

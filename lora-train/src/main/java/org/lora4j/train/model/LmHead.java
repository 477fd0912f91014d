package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import org.lora4j.core.internal.Threads;

/**
 * The model's top: the final RMSNorm, lm_head, and the next-token cross-entropy with its gradient.
 *
 * <p>The logits [n, V] exist once: the loss turns them into their gradient in place, in parallel
 * blocks of {@link #ROWS} rows, each row in double (max, sum of exponentials, the loss, then the
 * gradient written back over the logits). Over a large vocabulary (151,936 at Qwen2.5's shape) a
 * second [n, V] buffer, let alone double copies, would be the largest allocation of a LoRA step.
 * The arithmetic of each element is the one of a plain loop over all logits in double, and the
 * rows' losses are summed in row order, so the result does not depend on the core count.
 */
final class LmHead {
    /**
     * Rows per block of the loss: 16 floats are one cache line of the column-major logits, so a
     * block reads each line it touches once per pass; fixed, not derived from the core count.
     */
    private static final int ROWS = 16;

    final RmsNorm norm;             // model.norm
    final LoraLinear linear;        // lm_head
    private final DataType dtype;
    private final int d;
    private final int vocab;
    private INDArray logits;        // [n, V] 'f', returned by forward; the loss overwrites it with its gradient
    private double[] rowLoss = new double[0];   // [n] each row's loss (0 for rows that do not count)
    private double[][] blockScratch = new double[0][];  // per work slot: [V, ROWS] one block's exponentials
    private INDArray picked;        // [m, V] 'f' logits of the rows generation asks for
    private int n = -1;

    LmHead(RmsNorm norm, LoraLinear linear, DataType dtype) {
        this.norm = norm;
        this.linear = linear;
        this.dtype = dtype;
        this.d = (int) linear.inFeatures();
        this.vocab = (int) linear.outFeatures();
    }

    /** Logits [n, V] of the stream w.h; owned here and overwritten by the next forward or loss. */
    INDArray forward(Workspace w) {
        int rows = w.n;
        if (rows != n) {
            logits = null;  // let the old buffer go before allocating the new one
            logits = Workspace.nat(dtype, rows, vocab);
            rowLoss = new double[rows];
            n = rows;
        }
        INDArray x = linear.inputBuffer(rows);
        norm.forward(w.h, rows, x);
        linear.forward(x, logits);
        return logits;
    }

    /**
     * The mean next-token cross-entropy of the last forward's logits (see {@link DecoderModel#loss});
     * turns the logits into its gradient for {@link #backward}. Row r = b·seq + t predicts token
     * r + 1 when t < seq − 1 and the mask (null: all) selects that token.
     */
    double loss(int[] tokens, boolean[] lossMask, int batch, int seq) {
        int parts = Threads.slots((n + ROWS - 1) / ROWS);
        if (blockScratch.length < parts) {
            double[][] s = Arrays.copyOf(blockScratch, parts);
            for (int i = blockScratch.length; i < parts; i++) {
                s[i] = new double[vocab * ROWS];
            }
            blockScratch = s;
        }
        return crossEntropyInPlace(logits, tokens, lossMask, seq, rowLoss, blockScratch);
    }

    /**
     * The mean next-token cross-entropy of {@code logits} [n, V] 'f', which it overwrites with the
     * gradient of that mean (softmax − one-hot, over the count; 0 in rows that do not count). Row
     * r = b·seq + t predicts token r + 1 when t < seq − 1 and the mask (null: all) selects that token.
     * Rows run in parallel blocks of {@link #ROWS}; {@code rowLoss} [n] receives each row's loss and
     * {@code scratch} holds one [V, ROWS] block per work slot ({@link Threads#slots} of the blocks).
     */
    static double crossEntropyInPlace(INDArray logits, int[] tokens, boolean[] mask, int seq, double[] rowLoss,
                                      double[][] scratch) {
        int rows = (int) logits.size(0);
        int vocab = (int) logits.size(1);
        int count = 0;
        for (int r = 0; r < rows; r++) {
            if (counts(r, mask, seq)) {
                count++;
            }
        }
        if (count == 0) {
            throw new IllegalArgumentException("the loss mask selects no target token (a target needs a token before it)");
        }
        double inv = 1.0 / count;
        int blocks = (rows + ROWS - 1) / ROWS;
        int parts = Threads.slots(blocks);
        NativeBuffer buf = NativeBuffer.of(logits);
        Threads.parallelFor(parts, part -> {
            for (int b = Threads.rangeStart(part, parts, blocks); b < Threads.rangeStart(part + 1, parts, blocks); b++) {
                lossBlock(buf, rows, vocab, b * ROWS, Math.min(rows, (b + 1) * ROWS), tokens, mask, seq, inv,
                        rowLoss, scratch[part]);
            }
        });
        double sum = 0;
        for (int r = 0; r < rows; r++) {
            sum += rowLoss[r];
        }
        return sum / count;
    }

    /**
     * Rows [r0, r1) of the logits (column-major [n, V]: row r, token v at v·n + r): each counting
     * row's loss into rowLoss, and the logits overwritten with the gradient of the mean loss
     * (softmax − one-hot, over the count; 0 for rows that do not count).
     */
    private static void lossBlock(NativeBuffer buf, int n, int vocab, int r0, int r1, int[] tokens, boolean[] mask,
                                  int seq, double inv, double[] rowLoss, double[] e) {
        int m = r1 - r0;
        double[] max = new double[m];
        double[] sum = new double[m];
        Arrays.fill(max, Double.NEGATIVE_INFINITY);
        for (int v = 0; v < vocab; v++) {
            long at = (long) v * n + r0;
            int o = v * m;
            for (int i = 0; i < m; i++) {
                double x = buf.get(at + i);
                e[o + i] = x;
                max[i] = Math.max(max[i], x);
            }
        }
        for (int v = 0; v < vocab; v++) {
            int o = v * m;
            for (int i = 0; i < m; i++) {
                double x = Math.exp(e[o + i] - max[i]);
                e[o + i] = x;
                sum[i] += x;
            }
        }
        double[] factor = new double[m];   // turns an exponential into the gradient of its logit
        for (int i = 0; i < m; i++) {
            int r = r0 + i;
            if (counts(r, mask, seq)) {
                rowLoss[r] = max[i] + Math.log(sum[i]) - buf.get((long) tokens[r + 1] * n + r);
                factor[i] = inv / sum[i];
            } else {
                rowLoss[r] = 0;
                factor[i] = 0;
            }
        }
        for (int v = 0; v < vocab; v++) {
            long at = (long) v * n + r0;
            int o = v * m;
            for (int i = 0; i < m; i++) {
                buf.put(at + i, e[o + i] * factor[i]);
            }
        }
        for (int i = 0; i < m; i++) {
            int r = r0 + i;
            if (counts(r, mask, seq)) {
                long at = (long) tokens[r + 1] * n + r;
                buf.put(at, e[tokens[r + 1] * m + i] * factor[i] - inv);
            }
        }
    }

    private static boolean counts(int r, boolean[] mask, int seq) {
        return r % seq != seq - 1 && (mask == null || mask[r + 1]);
    }

    /**
     * Backward of the last loss times {@code lossScale}: lm_head's gradients accumulate; with
     * {@code inputGradient}, w.grads().dh [n, d] is overwritten with the gradient of the stream w.h.
     */
    void backward(Workspace w, double lossScale, boolean inputGradient) {
        INDArray dLogits = logits;   // the loss left the gradient there
        if (lossScale != 1.0) {
            scale(dLogits, lossScale);
        }
        Workspace.Grads g = inputGradient ? w.grads() : null;
        linear.backward(dLogits, inputGradient ? g.dX : null);
        if (inputGradient) {
            Arrays.fill(g.dh, 0, w.n * d, 0.0);
            norm.backward(g.dX, g.dh);
        }
    }

    /** Elements per piece of {@link #scale}: fixed, so the split does not depend on the core count. */
    private static final int SCALE_PIECE = 1 << 16;
    private static final ThreadLocal<double[]> SCALE_SCRATCH = ThreadLocal.withInitial(() -> new double[SCALE_PIECE]);

    /**
     * a *= factor as a Java loop on the fork-join pool: an ND4J {@code muli} here would wake OpenMP's
     * threads inside the step (org.lora4j.core.internal.Threads says why that costs).
     */
    private static void scale(INDArray a, double factor) {
        NativeBuffer buf = NativeBuffer.of(a);
        long len = a.length();
        int pieces = (int) ((len + SCALE_PIECE - 1) / SCALE_PIECE);
        Threads.parallelFor(pieces, p -> {
            long from = (long) p * SCALE_PIECE;
            int m = (int) Math.min(SCALE_PIECE, len - from);
            double[] x = SCALE_SCRATCH.get();
            buf.read(from, x, 0, m);
            for (int i = 0; i < m; i++) {
                x[i] *= factor;
            }
            buf.write(x, 0, from, m);
        });
    }

    /**
     * Logits of some rows of the stream w.h, one float[V] per row (generation's last positions):
     * the final norm and lm_head over just those rows, in one product.
     */
    float[][] logitsOf(Workspace w, int[] rows) {
        int m = rows.length;
        double[] x = new double[m * d];
        for (int c = 0; c < d; c++) {
            for (int i = 0; i < m; i++) {
                x[c * m + i] = w.h[c * w.n + rows[i]];
            }
        }
        INDArray in = linear.inputBuffer(m);
        norm.forward(x, m, in);
        if (picked == null || picked.size(0) != m) {
            picked = null;
            picked = Workspace.nat(dtype, m, vocab);
        }
        linear.forward(in, picked);
        double[] all = new double[m * vocab];
        NativeBuffer.read(picked, all, all.length);
        float[][] out = new float[m][vocab];
        for (int v = 0; v < vocab; v++) {
            for (int i = 0; i < m; i++) {
                out[i][v] = (float) all[v * m + i];
            }
        }
        return out;
    }
}

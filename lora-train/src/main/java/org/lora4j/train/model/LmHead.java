package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;

/**
 * The model's top: the final RMSNorm, lm_head, and the next-token cross-entropy with its gradient.
 * The loss runs as a Java loop in double over a copy of the logits ({@link Kernels#crossEntropy})
 * and keeps the gradient of the logits for the backward.
 */
final class LmHead {
    final RmsNorm norm;             // model.norm
    final LoraLinear linear;        // lm_head
    private final DataType dtype;
    private final int d;
    private final int vocab;
    private INDArray logits;        // [n, V] 'f', returned by forward
    private INDArray dLogits;       // [n, V] 'f', made by the first loss
    private double[] ceLogits;      // [n, V] the loss's copies, made with dLogits
    private double[] ceDLogits;
    private double[] ceRowMax;      // [n]
    private double[] ceRowSum;      // [n]
    private INDArray picked;        // [m, V] 'f' logits of the rows generation asks for
    private int n = -1;

    LmHead(RmsNorm norm, LoraLinear linear, DataType dtype) {
        this.norm = norm;
        this.linear = linear;
        this.dtype = dtype;
        this.d = (int) linear.inFeatures();
        this.vocab = (int) linear.outFeatures();
    }

    /** Logits [n, V] of the stream w.h; owned here and overwritten by the next forward. */
    INDArray forward(Workspace w) {
        int rows = w.n;
        if (rows != n) {
            logits = null;  // let the old buffers go before allocating the new ones
            dLogits = null;
            logits = Workspace.nat(dtype, rows, vocab);
            n = rows;
        }
        INDArray x = linear.inputBuffer(rows);
        norm.forward(w.h, rows, x);
        linear.forward(x, logits);
        return logits;
    }

    /**
     * The mean next-token cross-entropy of the last forward's logits (see {@link DecoderModel#loss});
     * keeps its gradient for {@link #backward}.
     */
    double loss(int[] tokens, boolean[] lossMask, int batch, int seq) {
        if (dLogits == null) {
            dLogits = Workspace.nat(dtype, n, vocab);
            ceLogits = new double[n * vocab];
            ceDLogits = new double[n * vocab];
            ceRowMax = new double[n];
            ceRowSum = new double[n];
        }
        NativeBuffer.read(logits, ceLogits, ceLogits.length);
        double[] sc = Kernels.crossEntropy(ceLogits, tokens, lossMask, batch, seq, vocab, ceDLogits, ceRowMax, ceRowSum);
        if (sc[1] == 0) {
            throw new IllegalArgumentException("the loss mask selects no target token (a target needs a token before it)");
        }
        NativeBuffer.write(ceDLogits, dLogits, ceDLogits.length);
        return sc[0] / sc[1];
    }

    /**
     * Backward of the last loss times {@code lossScale}: lm_head's gradients accumulate; with
     * {@code inputGradient}, w.dh [n, d] is overwritten with the gradient of the stream w.h.
     */
    void backward(Workspace w, double lossScale, boolean inputGradient) {
        if (lossScale != 1.0) {
            dLogits.muli(lossScale);
        }
        linear.backward(dLogits, inputGradient ? w.dX : null);
        if (inputGradient) {
            Arrays.fill(w.dh, 0, w.n * d, 0.0);
            norm.backward(w.dX, w.dh);
        }
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

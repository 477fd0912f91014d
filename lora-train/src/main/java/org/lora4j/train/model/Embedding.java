package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The token embedding: a row lookup forward, a scatter-add backward. With tied word embeddings the
 * table is lm_head's weight, read through the layer each time (attaching an adapter may repack it),
 * and its gradient is lm_head's weight gradient, so both uses accumulate into one.
 */
final class Embedding {
    private final INDArray own;         // [V, d] 'f', or null when tied
    private final LoraLinear tiedTo;    // lm_head when tied, else null
    private INDArray ownGrad;           // [V, d] 'f' in full fine-tuning, untied only
    private final int vocab;
    private final int d;
    private int[] tokens = new int[0];  // saved by forward: the rows the backward adds into

    /** An embedding of its own: table [V, d], copied into 'f' order. */
    Embedding(INDArray table, DataType dtype) {
        this.own = table.castTo(dtype).dup('f');
        this.tiedTo = null;
        this.vocab = (int) table.size(0);
        this.d = (int) table.size(1);
    }

    /** An embedding tied to {@code lmHead}'s weight. */
    Embedding(LoraLinear lmHead) {
        this.own = null;
        this.tiedTo = lmHead;
        this.vocab = (int) lmHead.outFeatures();
        this.d = (int) lmHead.inFeatures();
    }

    /** [V, d]: the table (lm_head's weight when tied). */
    INDArray table() {
        return own != null ? own : tiedTo.weight();
    }

    /** The table's gradient, null while frozen. */
    INDArray grad() {
        return own != null ? ownGrad : tiedTo.weightGrad();
    }

    /** Allocates or drops the gradient of an own table; a tied one trains with lm_head's weight. */
    void setTrainable(boolean trainable) {
        ownGrad = trainable && own != null ? Nd4j.create(own.dataType(), new long[]{vocab, d}, 'f') : null;
    }

    void zeroGrad() {
        if (ownGrad != null) {
            ownGrad.assign(0);
        }
    }

    /** h [n, d] (column-major doubles) = the rows of the first n tokens; keeps the tokens for the backward. */
    void forward(int[] ids, int n, double[] h) {
        tokens = java.util.Arrays.copyOf(ids, n);
        NativeBuffer e = NativeBuffer.of(table());  // [V, d] 'f': (v, c) at v + c·V
        for (int c = 0; c < d; c++) {
            long col = (long) c * vocab;
            int o = c * n;
            for (int r = 0; r < n; r++) {
                h[o + r] = e.get(col + ids[r]);
            }
        }
    }

    /** Adds dh [n, d] into the gradient rows of the last forward's tokens (a token seen twice gets both). */
    void backward(double[] dh) {
        NativeBuffer g = NativeBuffer.of(grad());  // [V, d] 'f'
        int n = tokens.length;
        for (int c = 0; c < d; c++) {
            long col = (long) c * vocab;
            int o = c * n;
            for (int r = 0; r < n; r++) {
                long at = col + tokens[r];
                g.put(at, g.get(at) + dh[o + r]);
            }
        }
    }
}

package org.lora4j.train.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Scratch of one pass shape (n = batch·seq rows) that every block uses in turn: the double copies
 * of activations for the Java loops, and, made at first use, the gradients flowing
 * between the parts ({@link Grads}). Blocks run one after another, so one set serves them all;
 * what a part must keep between its forward and its backward it owns itself. Made once per
 * (batch, seq) by {@link DecoderModel}. The gradient buffers double as scratch for a forward that
 * saves nothing (generation, evaluation, frozen blocks below the trainable ones), which writes its
 * roped q/k/v and gate/up outputs there instead of into buffers of its own.
 *
 * <p>Layouts: native arrays are [n, width] 'f' (the linear layers' layout); double arrays are
 * column-major [n, width] as in {@link Kernels}.
 */
final class Workspace {
    final int batch;
    final int seq;
    final int n;
    final INDArray out;     // [n, d] o_proj / down_proj output, then the gradient of that output
    final double[] h;       // [n, d] the residual stream
    final double[] tmpD;    // [n, d] scratch: the hooks' read-back; its first chunk, the residual add's
    SwiGluMlp.Scratch[] chunks;  // per work slot of SwiGLU's chunked loops, handed on between shapes
    private final ModelConfig config;
    private final DataType dtype;
    private INDArray hook;  // [n, d] the hidden state handed to hooks, made at the first hook
    private Grads grads;

    /** The gradients between the parts, [n, width] each. */
    static final class Grads {
        final double[] dh;      // [n, d] gradient of the residual stream
        final INDArray dX;      // [n, d] input gradient of lm_head, gate+up, q+k+v
        final INDArray dAttn;   // [n, hq·hd] gradient of the attention output (o_proj's input)
        final INDArray dq;      // [n, hq·hd] gradient of the roped queries
        final INDArray dk;      // [n, hkv·hd]
        final INDArray dv;      // [n, hkv·hd]
        final INDArray dFf;     // [n, ff] input gradient of down_proj
        final INDArray dGate;   // [n, ff]
        final INDArray dUp;     // [n, ff]

        Grads(ModelConfig c, DataType dtype, int n) {
            int d = c.hiddenSize();
            dh = new double[n * d];
            dX = nat(dtype, n, d);
            dAttn = nat(dtype, n, c.qDim());
            dq = nat(dtype, n, c.qDim());
            dk = nat(dtype, n, c.kvDim());
            dv = nat(dtype, n, c.kvDim());
            dFf = nat(dtype, n, c.intermediateSize());
            dGate = nat(dtype, n, c.intermediateSize());
            dUp = nat(dtype, n, c.intermediateSize());
        }
    }

    Workspace(ModelConfig c, DataType dtype, int batch, int seq, SwiGluMlp.Scratch[] chunks) {
        this.config = c;
        this.dtype = dtype;
        this.batch = batch;
        this.seq = seq;
        this.n = batch * seq;
        int d = c.hiddenSize();
        out = nat(dtype, n, d);
        h = new double[n * d];
        tmpD = new double[n * d];
        this.chunks = chunks == null ? new SwiGluMlp.Scratch[0] : chunks;
    }

    Grads grads() {
        if (grads == null) {
            grads = new Grads(config, dtype, n);
        }
        return grads;
    }

    INDArray hookBuffer() {
        if (hook == null) {
            hook = nat(dtype, n, config.hiddenSize());
        }
        return hook;
    }

    static INDArray nat(DataType dtype, int rows, int cols) {
        return Nd4j.create(dtype, new long[]{rows, cols}, 'f');
    }
}

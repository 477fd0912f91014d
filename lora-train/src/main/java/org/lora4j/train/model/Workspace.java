package org.lora4j.train.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Scratch of one pass shape (n = batch·seq rows) that every block uses in turn: the gradients
 * flowing between the parts in the backward, the residual stream and its gradient in double, and
 * the scratch of the Java loops. Blocks run one after another, so one set serves them all; what a part must keep between
 * its forward and its backward it owns itself. Made once per (batch, seq) by {@link DecoderModel}.
 *
 * <p>Layouts: native arrays are [n, width] 'f' (the linear layers' layout); double arrays are
 * column-major [n, width] as in {@link Kernels}.
 */
final class Workspace {
    final int batch;
    final int seq;
    final int n;
    final INDArray out;     // [n, d] o_proj / down_proj output, then the gradient of that output
    final INDArray dX;      // [n, d] input gradient of lm_head, gate+up, q+k+v
    final INDArray dAttn;   // [n, hq·hd] gradient of the attention output (o_proj's input)
    final INDArray dq;      // [n, hq·hd] gradient of the roped queries
    final INDArray dk;      // [n, hkv·hd]
    final INDArray dv;      // [n, hkv·hd]
    final INDArray dFf;     // [n, ff] input gradient of down_proj
    final INDArray dGate;   // [n, ff]
    final INDArray dUp;     // [n, ff]
    final INDArray hook;    // [n, d] the hidden state handed to hooks
    final double[] h;       // [n, d] the residual stream
    final double[] dh;      // [n, d] its gradient
    final double[] tmpD;    // [n, d] scratch: the hooks' read-back; its first chunk, the residual add's
    SwiGluMlp.Scratch[] chunks = new SwiGluMlp.Scratch[0];  // per work slot of SwiGLU's chunked loops

    Workspace(ModelConfig c, DataType dtype, int batch, int seq) {
        this.batch = batch;
        this.seq = seq;
        this.n = batch * seq;
        int d = c.hiddenSize();
        int q = c.qDim();
        int kv = c.kvDim();
        int ff = c.intermediateSize();
        out = nat(dtype, n, d);
        dX = nat(dtype, n, d);
        dAttn = nat(dtype, n, q);
        dq = nat(dtype, n, q);
        dk = nat(dtype, n, kv);
        dv = nat(dtype, n, kv);
        dFf = nat(dtype, n, ff);
        dGate = nat(dtype, n, ff);
        dUp = nat(dtype, n, ff);
        hook = nat(dtype, n, d);
        h = new double[n * d];
        dh = new double[n * d];
        tmpD = new double[n * d];
    }

    static INDArray nat(DataType dtype, int rows, int cols) {
        return Nd4j.create(dtype, new long[]{rows, cols}, 'f');
    }
}

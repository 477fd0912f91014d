package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.core.LoraLinear;
import org.lora4j.train.optim.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One decoder block, pre-norm: {@code h += attn(norm1(h)); h += mlp(norm2(h))}, on the residual
 * stream {@link Workspace#h} in place, and its backward on {@link Workspace#dh}. The norms keep the
 * block's input and its middle (after the attention residual) for the backward.
 */
final class DecoderBlock {
    final int index;
    final RmsNorm norm1;          // input_layernorm
    final SelfAttention attn;
    final RmsNorm norm2;          // post_attention_layernorm
    final SwiGluMlp mlp;
    private final int d;

    DecoderBlock(int index, RmsNorm norm1, SelfAttention attn, RmsNorm norm2, SwiGluMlp mlp, int d) {
        this.index = index;
        this.norm1 = norm1;
        this.attn = attn;
        this.norm2 = norm2;
        this.mlp = mlp;
        this.d = d;
    }

    /** q, k, v, o, gate, up, down: the block's linear layers in Hugging Face's order. */
    List<LoraLinear> linears() {
        List<LoraLinear> l = new ArrayList<>(attn.linears());
        l.addAll(mlp.linears());
        return l;
    }

    /** Every base weight by Hugging Face name, in Hugging Face's order. */
    void putParameters(Map<String, INDArray> m) {
        m.put(norm1.name(), norm1.weight());
        attn.linears().forEach(l -> putLinear(m, l));
        m.put(norm2.name(), norm2.weight());
        mlp.linears().forEach(l -> putLinear(m, l));
    }

    private static void putLinear(Map<String, INDArray> m, LoraLinear l) {
        m.put(l.name() + ".weight", l.weight());
        if (l.bias() != null) {
            m.put(l.name() + ".bias", l.bias());
        }
    }

    /** The base weights with their gradients, in the order of {@link #putParameters} (full fine-tuning). */
    void addWeightParameters(List<Parameter> out) {
        out.add(norm1.parameter());
        attn.linears().forEach(l -> addLinear(out, l));
        out.add(norm2.parameter());
        mlp.linears().forEach(l -> addLinear(out, l));
    }

    static void addLinear(List<Parameter> out, LoraLinear lin) {
        out.add(new Parameter(lin.name() + ".weight", lin.weight(), lin.weightGrad()));
        if (lin.bias() != null) {
            out.add(new Parameter(lin.name() + ".bias", lin.bias(), lin.biasGrad()));
        }
    }

    void setNormsTrainable(boolean trainable) {
        norm1.setTrainable(trainable);
        norm2.setTrainable(trainable);
    }

    void zeroNormGrads() {
        norm1.zeroGrad();
        norm2.zeroGrad();
    }

    /**
     * The block on w.h [n, d] in place. With a cache, see
     * {@link SelfAttention#forward(Workspace, org.nd4j.linalg.api.ndarray.INDArray, SelfAttention.KvCache, int[], int[])}.
     */
    void forward(Workspace w, SelfAttention.KvCache cache, int[] slots, int[] past) {
        int n = w.n;
        norm1.forward(w.h, n, attn.inputBuffer(n));
        attn.forward(w, w.out, cache, slots, past);
        addOutput(w);
        norm2.forward(w.h, n, mlp.inputBuffer(n));
        mlp.forward(w, w.out);
        addOutput(w);
    }

    /** w.dh [n, d]: the gradient of the block's output in, of its input out; parameter gradients accumulate. */
    void backward(Workspace w) {
        int n = w.n;
        NativeBuffer.write(w.dh, w.out, n * d);
        mlp.backward(w, w.out, w.dX);
        norm2.backward(w.dX, w.dh);
        NativeBuffer.write(w.dh, w.out, n * d);
        attn.backward(w, w.out, w.dX);
        norm1.backward(w.dX, w.dh);
    }

    /** Elements of the residual add read at a time: the chunk of w.tmpD they go through stays in L1. */
    private static final int ADD_CHUNK = 2048;

    /** h += out, the residual, reading out from native memory a chunk at a time (no [n, d] double copy). */
    private void addOutput(Workspace w) {
        int len = w.n * d;
        NativeBuffer out = NativeBuffer.of(w.out);
        double[] chunk = w.tmpD;
        double[] h = w.h;
        for (int from = 0; from < len; from += ADD_CHUNK) {
            int m = Math.min(ADD_CHUNK, len - from);
            out.read(from, chunk, 0, m);
            for (int i = 0; i < m; i++) {
                h[from + i] += chunk[i];
            }
        }
    }
}

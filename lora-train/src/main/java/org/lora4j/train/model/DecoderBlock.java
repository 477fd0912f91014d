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
     * The block on w.h [n, d] in place; with {@code keep} its parts save what their backward needs,
     * else they run on the workspace's scratch (generation, evaluation, frozen blocks below the
     * trainable ones). With a cache, see
     * {@link SelfAttention#forward(Workspace, org.nd4j.linalg.api.ndarray.INDArray, SelfAttention.KvCache, int[], int[], boolean)}.
     */
    void forward(Workspace w, SelfAttention.KvCache cache, int[] slots, int[] past, boolean keep) {
        int n = w.n;
        norm1.forward(w.h, n, attn.inputBuffer(n));
        attn.forward(w, w.out, cache, slots, past, keep);
        addOutput(w);
        norm2.forward(w.h, n, mlp.inputBuffer(n));
        mlp.forward(w, w.out, keep);
        addOutput(w);
    }

    /**
     * Where the backward of this block may stop: the lowest of its parts that trains, as a position
     * in {@link #linears()} order (0 q, 1 k, 2 v, 3 o, 4 gate, 5 up, 6 down); -1 when its norms train
     * (full fine-tuning: everything, down to the input gradient), 7 when nothing in it trains.
     */
    int lowestTrainablePart() {
        if (norm1.grad() != null) {
            return -1;
        }
        List<LoraLinear> l = linears();
        for (int i = 0; i < l.size(); i++) {
            if (trains(l.get(i))) {
                return i;
            }
        }
        return l.size();
    }

    /** Whether the layer's backward computes any gradient: its weight, or an adapter in use. */
    static boolean trains(LoraLinear lin) {
        return lin.weightsTrainable() || (lin.activeAdapter() != null && lin.adaptersEnabled() && !lin.isMerged());
    }

    /** w.grads().dh [n, d]: the gradient of the block's output in, of its input out; parameter gradients accumulate. */
    /**
     * The backward down to part {@code stop} ({@link #lowestTrainablePart()}): with stop >= 0 nothing
     * below the block needs a gradient, so it ends after the gradients of part stop and leaves w.grads().dh
     * as it is; nothing of the block below that part runs (the o_proj, attention core, q/k/v and
     * norm backwards when only down_proj trains).
     */
    void backward(Workspace w, int stop) {
        int n = w.n;
        Workspace.Grads g = w.grads();
        NativeBuffer.write(g.dh, w.out, n * d);
        if (stop >= 4) {
            mlp.backwardTo(w, w.out, stop);
            return;
        }
        mlp.backward(w, w.out, g.dX);
        norm2.backward(g.dX, g.dh);
        NativeBuffer.write(g.dh, w.out, n * d);
        if (stop >= 0) {
            attn.backwardTo(w, w.out, stop);
            return;
        }
        attn.backward(w, w.out, g.dX);
        norm1.backward(g.dX, g.dh);
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

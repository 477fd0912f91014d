package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

/**
 * Grouped-query causal self-attention of one block: q/k/v projections, RoPE on queries and keys,
 * the attention core ({@link Attention}) and o_proj; in generation, the keys and values of earlier
 * positions come from a {@link KvCache}.
 *
 * <p>Saves for the backward the roped queries and keys, the values and each query's log-sum-exp;
 * the backward recomputes the scores from them.
 */
final class SelfAttention {
    final LoraLinear q;
    final LoraLinear k;
    final LoraLinear v;
    final LoraLinear o;
    private final Rope rope;
    private final Attention core;   // shared by the blocks: its scratch serves one call at a time
    private final DataType dtype;
    private final int hq;
    private final int hkv;
    private final int hd;
    // Saved by forward for backward.
    private INDArray qa;            // [n, hq·hd] 'f' after RoPE (native: attention's gemm reads it)
    private INDArray ka;            // [n, hkv·hd] 'f' after RoPE
    private INDArray va;            // [n, hkv·hd] 'f'
    private double[] lse;           // [hq, n] log-sum-exp of each query's scores
    private int n = -1;
    private boolean kept;           // whether the last forward saved qa, ka and va

    SelfAttention(LoraLinear q, LoraLinear k, LoraLinear v, LoraLinear o, Rope rope, Attention core, ModelConfig c,
                  DataType dtype) {
        this.q = q;
        this.k = k;
        this.v = v;
        this.o = o;
        this.rope = rope;
        this.core = core;
        this.dtype = dtype;
        this.hq = c.numHeads();
        this.hkv = c.numKvHeads();
        this.hd = c.headDim();
    }

    List<LoraLinear> linears() {
        return List.of(q, k, v, o);
    }

    /** Where the caller writes the normalised input [n, d]: q_proj's input buffer, which k and v read too. */
    INDArray inputBuffer(int rows) {
        return q.inputBuffer(rows);
    }

    /**
     * out [n, d] = o_proj(attention(rope(q(x)), rope(k(x)), v(x))) for x = {@link #inputBuffer}(n).
     * Without a cache the keys are the pass's own (training, and the no-cache reference of
     * generation). With one, the new keys and values go into the cache first and attention reads
     * each sequence's slot there: sequence bi (rows bi·seq..) sits in slot {@code slots[bi]} with
     * {@code past[bi]} positions before it. With {@code keep} the roped queries, keys and values
     * stay in buffers of this block for the backward; without, they live in the workspace's
     * gradient buffers, so a block that gets no backward holds none.
     */
    void forward(Workspace w, INDArray out, KvCache cache, int[] slots, int[] past, boolean keep) {
        int rows = w.n;
        ensure(rows, keep);
        INDArray qa = keep ? this.qa : w.grads().dq;   // without keep, on the workspace's gradient buffers (free now)
        INDArray ka = keep ? this.ka : w.grads().dk;
        INDArray va = keep ? this.va : w.grads().dv;
        kept = keep;
        INDArray x = q.inputBuffer(rows);
        q.forward(x, qa);
        k.forward(x, ka);
        v.forward(x, va);
        INDArray xo = o.inputBuffer(rows);  // [n, hq·hd]: attention writes o_proj's input in place
        if (cache == null) {
            rope.apply(qa, rows, w.seq, hq, 0, null, 1.0);
            rope.apply(ka, rows, w.seq, hkv, 0, null, 1.0);
            core.forward(w.batch, w.seq, 0, qa, ka, va, rows, w.seq, xo, lse);
        } else {
            int[] pos = w.seq == 1 ? past : null;   // a decode step: every row at its own position
            int p0 = pos == null ? past[0] : 0;     // a prefill: sequences of one length, same past
            rope.apply(qa, rows, w.seq, hq, p0, pos, 1.0);
            rope.apply(ka, rows, w.seq, hkv, p0, pos, 1.0);
            cache.append(ka, va, w.batch, w.seq, slots, past);
            core.forward(w.batch, w.seq, past, cache.bases(slots), qa, cache.keys(), cache.values(), cache.capacity(),
                    xo, lse);
        }
        o.forward(xo, out);
    }

    /**
     * Backward of the last forward (without a cache): dOut [n, d] is the gradient of its output;
     * dX [n, d] is overwritten with the gradient of its input. Weight and adapter gradients accumulate.
     */
    void backward(Workspace w, INDArray dOut, INDArray dX) {
        checkKept();
        int rows = w.n;
        Workspace.Grads g = w.grads();
        o.backward(dOut, g.dAttn);
        core.backward(w.batch, w.seq, qa, ka, va, lse, g.dAttn, g.dq, g.dk, g.dv);
        rope.apply(g.dq, rows, w.seq, hq, 0, null, -1.0);
        rope.apply(g.dk, rows, w.seq, hkv, 0, null, -1.0);
        q.backward(g.dq, dX);
        k.backwardAccumulate(g.dk, dX);
        v.backwardAccumulate(g.dv, dX);
    }

    /**
     * The backward for the gradients of the parts from {@code stop} (0 q, 1 k, 2 v, 3 o, as in
     * {@link DecoderBlock#lowestTrainablePart}) up, without the input gradient: nothing below needs
     * it. With only o_proj training, the attention core's backward does not run.
     */
    void backwardTo(Workspace w, INDArray dOut, int stop) {
        if (stop >= 3) {
            o.backward(dOut, null);
            return;
        }
        checkKept();
        int rows = w.n;
        Workspace.Grads g = w.grads();
        o.backward(dOut, g.dAttn);
        core.backward(w.batch, w.seq, qa, ka, va, lse, g.dAttn, g.dq, g.dk, g.dv);
        if (DecoderBlock.trains(q)) {
            rope.apply(g.dq, rows, w.seq, hq, 0, null, -1.0);
            q.backward(g.dq, null);
        }
        if (DecoderBlock.trains(k)) {
            rope.apply(g.dk, rows, w.seq, hkv, 0, null, -1.0);
            k.backward(g.dk, null);
        }
        v.backward(g.dv, null);
    }

    private void checkKept() {
        if (!kept) {
            throw new IllegalStateException("backward of an attention whose forward saved nothing for it");
        }
    }

    /** The log-sum-exp always (small); the native buffers only for a forward that keeps them. */
    private void ensure(int rows, boolean keep) {
        if (rows != n) {
            qa = null;   // let the old buffers go before allocating the new ones
            ka = null;
            va = null;
            lse = new double[hq * rows];
            n = rows;
        }
        if (keep && qa == null) {
            qa = Workspace.nat(dtype, rows, hq * hd);
            ka = Workspace.nat(dtype, rows, hkv * hd);
            va = Workspace.nat(dtype, rows, hkv * hd);
        }
    }

    /**
     * Keys and values of earlier positions for generation, one slot per sequence, for one layer.
     * Slot s, position j, feature f (= g·hd + c) at {@code s·cap·width + f·cap + j}: per slot the
     * column-major [cap, hkv·hd] layout attention reads with leading dimension cap.
     */
    static final class KvCache {
        private final INDArray keys;    // [slots·cap·width] flat
        private final INDArray values;
        private final int cap;
        private final int width;

        KvCache(DataType dtype, int slots, int cap, int width) {
            this.keys = Nd4j.create(dtype, (long) slots * cap * width);
            this.values = Nd4j.create(dtype, (long) slots * cap * width);
            this.cap = cap;
            this.width = width;
        }

        INDArray keys() {
            return keys;
        }

        INDArray values() {
            return values;
        }

        int capacity() {
            return cap;
        }

        long[] bases(int[] slots) {
            long[] b = new long[slots.length];
            for (int i = 0; i < slots.length; i++) {
                b[i] = (long) slots[i] * cap * width;
            }
            return b;
        }

        /**
         * Stores the new positions: k, v [n, width] native (k roped, rows {@code bi·seq + t});
         * sequence bi's row t goes to position past[bi] + t of slot slots[bi].
         * Element by element: a decode step writes one position per sequence and feature, too
         * few for a bulk copy each.
         */
        void append(INDArray k, INDArray v, int batch, int seq, int[] slots, int[] past) {
            int n = batch * seq;
            NativeBuffer kc = NativeBuffer.of(keys);
            NativeBuffer vc = NativeBuffer.of(values);
            NativeBuffer ks = NativeBuffer.of(k);
            NativeBuffer vs = NativeBuffer.of(v);
            for (int bi = 0; bi < batch; bi++) {
                long base = (long) slots[bi] * cap * width + past[bi];
                for (int f = 0; f < width; f++) {
                    long at = base + (long) f * cap;
                    int from = f * n + bi * seq;
                    for (int t = 0; t < seq; t++) {
                        kc.put(at + t, ks.get(from + t));
                        vc.put(at + t, vs.get(from + t));
                    }
                }
            }
        }
    }
}

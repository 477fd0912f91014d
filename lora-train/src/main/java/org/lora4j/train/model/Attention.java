package org.lora4j.train.model;

import org.lora4j.core.internal.Blas;
import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.core.internal.Threads;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.function.ObjIntConsumer;

/**
 * Causal grouped-query scaled dot-product attention as the model runs it: per (sequence, query
 * head) S = scale · Q Kᵀ, O = P V and their backward as tiled BLAS products straight on the native
 * buffers ({@link Blas#gemm}), the softmax P of S as a Java loop
 * ({@link Kernels#causalSoftmax}, on float32 blocks for FLOAT models).
 * Query head h reads KV head h / (hq / hkv).
 *
 * <p>A class of its own so that the tests exercise exactly what {@link SelfAttention} runs, beyond
 * one tile: AttentionTest compares it with a plain-loop reference and gradient-checks it.
 *
 * <p>Layouts: queries [n, hq·hd] 'f', n = batch·tq, row {@code bi·tq + i}, column {@code h·hd + c}
 * (leading dimension n). Keys and values: (position j of sequence bi, feature g·hd + c) at
 * {@code bi·kvSeqStride + (g·hd + c)·kvLd + j}; without a cache that is the queries' layout
 * (kvSeqStride = tq, kvLd = n). With a cache ({@link KvCache}) each sequence has its own start
 * (kvBase) and kvLd is the cache's capacity. lse [hq, n]: query (bi, i) of head h at
 * {@code h·n + bi·tq + i}.
 *
 * <p>Work is split into (sequence, KV head) tasks, in contiguous ranges per work slot, each slot
 * with its own scratch, so results do not depend on the core count or on which thread runs what.
 * Not thread-safe (the scratch is reused from call to call).
 */
final class Attention {
    private final int hq;
    private final int hkv;
    private final int hd;
    private final double scale;
    private final DataType dtype;
    private final int tile;
    private Slot[] slots = new Slot[0];

    Attention(int hq, int hkv, int hd, DataType dtype) {
        if (hq % hkv != 0) {
            throw new IllegalArgumentException("query heads (" + hq + ") must be a multiple of KV heads (" + hkv + ")");
        }
        this.hq = hq;
        this.hkv = hkv;
        this.hd = hd;
        this.scale = 1.0 / Math.sqrt(hd);
        this.dtype = dtype;
        this.tile = tile(hd);
    }

    /**
     * Side of the attention tiles: each BLAS call multiplies at most TILE x TILE x hd, below
     * OpenBLAS's 65536 · 4 multiply-adds from which it splits a gemm across its own threads
     * (GEMM_MULTITHREAD_THRESHOLD). On two cores a split 128 x 128 x 32 product took 1.8x the time
     * of the same product on one thread; single-threaded calls from the two Java workers use both
     * cores instead. Tiles also skip the key blocks a causal query block cannot see.
     */
    static int tile(int hd) {
        int t = 64;
        while (t > 8 && (long) t * t * hd > 65536L * 4) {
            t /= 2;
        }
        return t;
    }

    /**
     * Per-slot scratch: native score blocks for the gemm calls, and the softmax's Java arrays: for
     * FLOAT models a float32 copy of each block (a bulk copy, no conversion) and one double array
     * of the exponentials; for DOUBLE models double copies.
     */
    private static final class Slot {
        INDArray sArr;    // [tq, tk] column-major: scores, then probabilities
        INDArray dsArr;   // [tq, tk]: dO·Vᵀ, then the score gradient
        NativeBuffer s;
        NativeBuffer ds;
        float[] sf = new float[0];      // FLOAT: the blocks as float32
        float[] dsf = new float[0];
        double[] p = new double[0];     // FLOAT: the exponentials; DOUBLE: the scores block
        double[] dp = new double[0];    // DOUBLE only
        double[] rowA = new double[0];
        double[] rowB = new double[0];

        void ensure(DataType dtype, int tq, int tk) {
            int len = tq * tk;
            if (sArr == null || sArr.length() < len) {
                sArr = Nd4j.create(dtype, len);
                dsArr = Nd4j.create(dtype, len);
                s = NativeBuffer.of(sArr);
                ds = NativeBuffer.of(dsArr);
                p = new double[len];
                if (dtype == DataType.FLOAT) {
                    sf = new float[len];
                    dsf = new float[len];
                } else {
                    dp = new double[len];
                }
            }
            if (rowA.length < tq) {
                rowA = new double[tq];
                rowB = new double[tq];
            }
        }
    }

    /** Runs task(slot, t) for t in [0, tasks), in parallel over contiguous ranges of tasks. */
    private void parallelTasks(int tasks, int tq, int tk, ObjIntConsumer<Slot> task) {
        int parts = Threads.slots(tasks);
        if (slots.length < parts) {
            Slot[] s = java.util.Arrays.copyOf(slots, parts);
            for (int i = slots.length; i < parts; i++) {
                s[i] = new Slot();
            }
            slots = s;
        }
        Slot[] sc = slots;
        for (int i = 0; i < parts; i++) {
            sc[i].ensure(dtype, tq, tk);
        }
        Threads.parallelFor(parts, part -> {
            for (int t = part * tasks / parts; t < (part + 1) * tasks / parts; t++) {
                task.accept(sc[part], t);
            }
        });
    }

    /**
     * Attention of {@code batch} sequences of {@code tq} queries at positions past..past + tq − 1
     * over keys 0..past + tq − 1 (query i sees keys j <= past + i).
     *
     * @param q    [n, hq·hd] 'f', after RoPE
     * @param k    keys, see the class comment for kvLd and kvSeqStride
     * @param v    values, the layout of k
     * @param o    [n, hq·hd] column-major with leading dimension n, overwritten
     * @param lse  [hq, n] the log-sum-exp of each query's scores, written for the backward
     */
    void forward(int batch, int tq, int past, INDArray q, INDArray k, INDArray v, int kvLd, int kvSeqStride,
                 INDArray o, double[] lse) {
        int[] pasts = new int[batch];
        long[] kvBase = new long[batch];
        for (int bi = 0; bi < batch; bi++) {
            pasts[bi] = past;
            kvBase[bi] = (long) bi * kvSeqStride;
        }
        forward(batch, tq, pasts, kvBase, q, k, v, kvLd, o, lse);
    }

    /**
     * As {@link #forward(int, int, int, INDArray, INDArray, INDArray, int, int, INDArray, double[])}
     * with a history of its own per sequence: sequence bi's queries are at positions past[bi]..,
     * and its keys start at element kvBase[bi] of k and v (its slot in a KV cache of many sequences).
     */
    void forward(int batch, int tq, int[] past, long[] kvBase, INDArray qArr, INDArray kArr, INDArray vArr, int kvLd,
                 INDArray oArr, double[] lse) {
        NativeBuffer q = NativeBuffer.of(qArr);
        NativeBuffer k = NativeBuffer.of(kArr);
        NativeBuffer v = NativeBuffer.of(vArr);
        NativeBuffer o = NativeBuffer.of(oArr);
        int n = batch * tq;
        int rep = hq / hkv;
        int maxTk = 0;
        for (int bi = 0; bi < batch; bi++) {
            maxTk = Math.max(maxTk, past[bi] + tq);
        }
        boolean isFloat = dtype == DataType.FLOAT;
        parallelTasks(batch * hkv, tq, maxTk, (s, task) -> {
            int bi = task / hkv;
            int g = task % hkv;
            int before = past[bi];
            int tk = before + tq;
            long kvOff = kvBase[bi] + (long) g * hd * kvLd;
            for (int h = g * rep; h < (g + 1) * rep; h++) {
                long qOff = (long) bi * tq + (long) h * hd * n;
                for (int i0 = 0; i0 < tq; i0 += tile) {
                    int i1 = Math.min(tq, i0 + tile);
                    int visible = Math.min(tk, before + i1);   // keys the tile's last query sees
                    for (int j0 = 0; j0 < visible; j0 += tile) {
                        int j1 = Math.min(visible, j0 + tile);
                        Blas.gemm(false, true, i1 - i0, j1 - j0, hd, scale, q, qOff + i0, n,
                                k, kvOff + j0, kvLd, 0.0, s.s, i0 + (long) j0 * tq, tq);       // S block
                    }
                }
                int block = tq * tk;
                if (isFloat) {
                    s.s.read(0, s.sf, 0, block);
                    Kernels.causalSoftmax(s.sf, s.p, tq, tk, tile, lse, h * n + bi * tq, s.rowA, s.rowB);
                    s.s.write(s.sf, 0, 0, block);
                } else {
                    s.s.read(0, s.p, 0, block);
                    Kernels.causalSoftmax(s.p, tq, tk, lse, h * n + bi * tq, s.rowA, s.rowB);
                    s.s.write(s.p, 0, 0, block);
                }
                for (int i0 = 0; i0 < tq; i0 += tile) {
                    int i1 = Math.min(tq, i0 + tile);
                    int visible = Math.min(tk, before + i1);
                    for (int j0 = 0; j0 < visible; j0 += tile) {
                        int j1 = Math.min(visible, j0 + tile);
                        Blas.gemm(false, false, i1 - i0, hd, j1 - j0, 1.0, s.s, i0 + (long) j0 * tq, tq,
                                v, kvOff + j0, kvLd, j0 == 0 ? 0.0 : 1.0, o, qOff + i0, n);    // O += P V
                    }
                }
            }
        });
    }

    /**
     * Backward of {@link #forward} without a cache (past 0, keys and values in the queries'
     * layout): recomputes S from q, k and the saved log-sum-exp, so nothing of size seq² is kept
     * between the passes. A task owns its KV head's rows of dk and dv, where its rep query heads
     * accumulate.
     *
     * @param dO  [n, hq·hd] gradient of the attention output
     * @param dq  [n, hq·hd] overwritten; dk, dv [n, hkv·hd] overwritten
     */
    void backward(int batch, int tq, INDArray qArr, INDArray kArr, INDArray vArr, double[] lse, INDArray dOArr,
                  INDArray dqArr, INDArray dkArr, INDArray dvArr) {
        NativeBuffer q = NativeBuffer.of(qArr);
        NativeBuffer k = NativeBuffer.of(kArr);
        NativeBuffer v = NativeBuffer.of(vArr);
        NativeBuffer dO = NativeBuffer.of(dOArr);
        NativeBuffer dq = NativeBuffer.of(dqArr);
        NativeBuffer dk = NativeBuffer.of(dkArr);
        NativeBuffer dv = NativeBuffer.of(dvArr);
        int n = batch * tq;
        int rep = hq / hkv;
        boolean isFloat = dtype == DataType.FLOAT;
        parallelTasks(batch * hkv, tq, tq, (s, task) -> {
            int bi = task / hkv;
            int g = task % hkv;
            long kvOff = (long) bi * tq + (long) g * hd * n;
            for (int h = g * rep; h < (g + 1) * rep; h++) {
                long qOff = (long) bi * tq + (long) h * hd * n;
                boolean firstHead = h == g * rep;
                for (int i0 = 0; i0 < tq; i0 += tile) {
                    int i1 = Math.min(tq, i0 + tile);
                    for (int j0 = 0; j0 < i1; j0 += tile) {
                        int j1 = Math.min(i1, j0 + tile);
                        long at = i0 + (long) j0 * tq;
                        Blas.gemm(false, true, i1 - i0, j1 - j0, hd, scale, q, qOff + i0, n,
                                k, kvOff + j0, n, 0.0, s.s, at, tq);                            // S block
                        Blas.gemm(false, true, i1 - i0, j1 - j0, hd, 1.0, dO, qOff + i0, n,
                                v, kvOff + j0, n, 0.0, s.ds, at, tq);                           // dO Vᵀ block
                    }
                }
                int block = tq * tq;
                if (isFloat) {
                    s.s.read(0, s.sf, 0, block);
                    s.ds.read(0, s.dsf, 0, block);
                    Kernels.causalSoftmaxBackward(s.sf, s.dsf, s.p, tq, tq, tile, scale, lse, h * n + bi * tq,
                            s.rowA);
                    s.s.write(s.sf, 0, 0, block);
                    s.ds.write(s.dsf, 0, 0, block);
                } else {
                    s.s.read(0, s.p, 0, block);
                    s.ds.read(0, s.dp, 0, block);
                    Kernels.causalSoftmaxBackward(s.p, s.dp, tq, tq, scale, lse, h * n + bi * tq, s.rowA);
                    s.s.write(s.p, 0, 0, block);
                    s.ds.write(s.dp, 0, 0, block);
                }
                // Key tile j0 is seen by the query tiles i0 >= j0; the first product into a tile overwrites it.
                for (int j0 = 0; j0 < tq; j0 += tile) {
                    int j1 = Math.min(tq, j0 + tile);
                    for (int i0 = j0; i0 < tq; i0 += tile) {
                        int i1 = Math.min(tq, i0 + tile);
                        long at = i0 + (long) j0 * tq;
                        double beta = firstHead && i0 == j0 ? 0.0 : 1.0;
                        Blas.gemm(true, false, j1 - j0, hd, i1 - i0, 1.0, s.s, at, tq, dO, qOff + i0, n,
                                beta, dv, kvOff + j0, n);                                           // dV += Pᵀ dO
                        Blas.gemm(true, false, j1 - j0, hd, i1 - i0, 1.0, s.ds, at, tq, q, qOff + i0, n,
                                beta, dk, kvOff + j0, n);                                           // dK += dSᵀ Q
                    }
                }
                for (int i0 = 0; i0 < tq; i0 += tile) {
                    int i1 = Math.min(tq, i0 + tile);
                    for (int j0 = 0; j0 < i1; j0 += tile) {
                        int j1 = Math.min(i1, j0 + tile);
                        Blas.gemm(false, false, i1 - i0, hd, j1 - j0, 1.0, s.ds, i0 + (long) j0 * tq, tq,
                                k, kvOff + j0, n, j0 == 0 ? 0.0 : 1.0, dq, qOff + i0, n);        // dQ += dS K
                    }
                }
            }
        });
    }
}

package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import org.lora4j.core.internal.Threads;

/**
 * The SwiGLU MLP of one block, {@code down(silu(gate(x)) ∘ up(x))}. Saves the gate and up outputs
 * for the backward. The element-wise part runs chunk by chunk from and to the native buffers (the
 * chunks stay in L2; FLOAT models' chunks are float32, computed in double), in parallel over contiguous ranges of chunks.
 */
final class SwiGluMlp {
    /** Elements per chunk of the element-wise loops on native buffers: three double chunks stay in L2. */
    private static final int CHUNK = 1 << 13;

    final LoraLinear gate;
    final LoraLinear up;
    final LoraLinear down;
    private final DataType dtype;
    private final int ff;
    private INDArray g;     // [n, ff] 'f' gate_proj output, saved
    private INDArray u;     // [n, ff] 'f' up_proj output, saved
    private int n = -1;

    SwiGluMlp(LoraLinear gate, LoraLinear up, LoraLinear down, DataType dtype) {
        this.gate = gate;
        this.up = up;
        this.down = down;
        this.dtype = dtype;
        this.ff = (int) gate.outFeatures();
    }

    List<LoraLinear> linears() {
        return List.of(gate, up, down);
    }

    /** Where the caller writes the normalised input [n, d]: gate_proj's input buffer, which up reads too. */
    INDArray inputBuffer(int rows) {
        return gate.inputBuffer(rows);
    }

    /** out [n, d] = down(silu(gate(x)) ∘ up(x)) for x = {@link #inputBuffer}(n). */
    void forward(Workspace w, INDArray out) {
        int rows = w.n;
        ensure(rows);
        INDArray x = gate.inputBuffer(rows);
        gate.forward(x, g);
        up.forward(x, u);
        INDArray a = down.inputBuffer(rows);  // SwiGLU writes down_proj's input in place
        NativeBuffer gm = NativeBuffer.of(g);
        NativeBuffer um = NativeBuffer.of(u);
        NativeBuffer am = NativeBuffer.of(a);
        boolean isFloat = dtype == DataType.FLOAT;
        parallelChunks(w, rows * ff, (s, from, to) -> {
            int m = to - from;
            if (isFloat) {
                gm.read(from, s.f1, 0, m);
                um.read(from, s.f2, 0, m);
                Kernels.swigluForward(s.f1, s.f2, s.f3, s.c1, 0, m);
                am.write(s.f3, 0, from, m);
            } else {
                gm.read(from, s.c1, 0, m);
                um.read(from, s.c2, 0, m);
                Kernels.swigluForward(s.c1, s.c2, s.c3, 0, m);
                am.write(s.c3, 0, from, m);
            }
        });
        down.forward(a, out);
    }

    /** dOut [n, d] the gradient of the last forward's output; dX [n, d] overwritten with its input's. */
    void backward(Workspace w, INDArray dOut, INDArray dX) {
        down.backward(dOut, w.dFf);
        NativeBuffer gm = NativeBuffer.of(g);
        NativeBuffer um = NativeBuffer.of(u);
        NativeBuffer da = NativeBuffer.of(w.dFf);
        NativeBuffer dg = NativeBuffer.of(w.dGate);
        NativeBuffer du = NativeBuffer.of(w.dUp);
        boolean isFloat = dtype == DataType.FLOAT;
        parallelChunks(w, w.n * ff, (s, from, to) -> {
            int m = to - from;
            if (isFloat) {
                gm.read(from, s.f1, 0, m);
                um.read(from, s.f2, 0, m);
                da.read(from, s.f3, 0, m);
                Kernels.swigluBackward(s.f1, s.f2, s.f3, s.f4, s.f5, s.c1, 0, m);
                dg.write(s.f4, 0, from, m);
                du.write(s.f5, 0, from, m);
            } else {
                gm.read(from, s.c1, 0, m);
                um.read(from, s.c2, 0, m);
                da.read(from, s.c3, 0, m);
                Kernels.swigluBackward(s.c1, s.c2, s.c3, s.c4, s.c5, 0, m);
                dg.write(s.c4, 0, from, m);
                du.write(s.c5, 0, from, m);
            }
        });
        gate.backward(w.dGate, dX);
        up.backwardAccumulate(w.dUp, dX);
    }

    private void ensure(int rows) {
        if (rows != n) {
            g = null;   // let the old buffers go before allocating the new ones
            u = null;
            g = Workspace.nat(dtype, rows, ff);
            u = Workspace.nat(dtype, rows, ff);
            n = rows;
        }
    }

    private interface ChunkTask {
        void run(Scratch s, int from, int to);
    }

    /** Runs span(scratch, from, to) over [0, len) in chunks, in parallel over contiguous ranges of chunks. */
    private static void parallelChunks(Workspace w, int len, ChunkTask span) {
        int chunks = (len + CHUNK - 1) / CHUNK;
        int parts = Threads.slots(chunks);
        if (w.chunks.length < parts) {
            Scratch[] s = java.util.Arrays.copyOf(w.chunks, parts);
            for (int i = w.chunks.length; i < parts; i++) {
                s[i] = new Scratch();
            }
            w.chunks = s;
        }
        Scratch[] sc = w.chunks;
        Threads.parallelFor(parts, part -> {
            for (int c = part * chunks / parts; c < (part + 1) * chunks / parts; c++) {
                span.run(sc[part], c * CHUNK, Math.min(len, (c + 1) * CHUNK));
            }
        });
    }

    /**
     * Per-slot scratch of the element-wise loops, CHUNK elements each, shared by the blocks through
     * the Workspace. FLOAT models work on float32 chunks (bulk copies of the native buffers, no
     * conversion pass) with c1 as the double scratch of the exp; DOUBLE models on c1..c5.
     */
    static final class Scratch {
        final double[] c1 = new double[CHUNK];
        final double[] c2 = new double[CHUNK];
        final double[] c3 = new double[CHUNK];
        final double[] c4 = new double[CHUNK];
        final double[] c5 = new double[CHUNK];
        final float[] f1 = new float[CHUNK];
        final float[] f2 = new float[CHUNK];
        final float[] f3 = new float[CHUNK];
        final float[] f4 = new float[CHUNK];
        final float[] f5 = new float[CHUNK];
    }
}

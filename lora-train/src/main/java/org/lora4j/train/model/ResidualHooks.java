package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * The residual hooks of a model, per layer, and how a pass applies them: the stream after a block
 * goes to the hooks as an array of the model's type, and comes back (forward); the gradient runs
 * through them in reverse order (backward).
 */
final class ResidualHooks {
    private final List<List<ResidualHook>> hooks = new ArrayList<>();
    private final DataType dtype;
    private final int d;

    ResidualHooks(int layers, int d, DataType dtype) {
        for (int i = 0; i < layers; i++) {
            hooks.add(new ArrayList<>());
        }
        this.d = d;
        this.dtype = dtype;
    }

    void add(int layer, ResidualHook hook) {
        check(layer);
        hooks.get(layer).add(Objects.requireNonNull(hook, "hook"));
    }

    boolean remove(int layer, ResidualHook hook) {
        check(layer);
        return hooks.get(layer).remove(hook);
    }

    void clear() {
        hooks.forEach(List::clear);
    }

    private void check(int layer) {
        if (layer < 0 || layer >= hooks.size()) {
            throw new IllegalArgumentException("layer must be in [0, " + hooks.size() + "), got " + layer);
        }
    }

    /** Runs layer's hooks on the stream w.h [n, d] in order; mask null means all tokens. */
    void forward(int layer, Workspace w, boolean[] mask) {
        List<ResidualHook> hs = hooks.get(layer);
        if (hs.isEmpty()) {
            return;
        }
        int len = w.n * d;
        INDArray buf = w.hookBuffer();
        NativeBuffer.write(w.h, buf, len);
        boolean[] m = mask;
        if (m == null) {
            m = new boolean[w.n];
            Arrays.fill(m, true);
        }
        for (ResidualHook hook : hs) {
            hook.forward(layer, buf, m);
        }
        readBackChanged(buf, w.h, w.tmpD, len);
    }

    /** Runs layer's hooks' backward on the gradient w.grads().dh [n, d], last hook first. */
    void backward(int layer, Workspace w) {
        List<ResidualHook> hs = hooks.get(layer);
        if (hs.isEmpty()) {
            return;
        }
        int len = w.n * d;
        INDArray buf = w.hookBuffer();
        double[] dh = w.grads().dh;
        NativeBuffer.write(dh, buf, len);
        for (int i = hs.size() - 1; i >= 0; i--) {
            hs.get(i).backward(layer, buf);
        }
        readBackChanged(buf, dh, w.tmpD, len);
    }

    /**
     * x = the hooks' result, except where a hook left an element as it was handed over: the
     * stream is kept in double and the hook sees it rounded to the model's type, so a plain read
     * back would round a FLOAT model's whole stream at every hook and a hook that only reads
     * ({@link ResidualHook.Capture}) would change the logits. tmp [len] is scratch.
     */
    private void readBackChanged(INDArray hook, double[] x, double[] tmp, int len) {
        NativeBuffer.read(hook, tmp, len);
        if (dtype == DataType.DOUBLE) {
            System.arraycopy(tmp, 0, x, 0, len);
            return;
        }
        for (int i = 0; i < len; i++) {
            if (tmp[i] != (double) (float) x[i]) {
                x[i] = tmp[i];
            }
        }
    }
}

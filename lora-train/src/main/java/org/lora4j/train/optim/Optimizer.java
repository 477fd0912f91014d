package org.lora4j.train.optim;

import org.lora4j.core.internal.Threads;
import org.lora4j.core.internal.NativeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * AdamW (decoupled weight decay, Loshchilov and Hutter) or plain SGD over a fixed list of
 * {@link Parameter}s, computed as torch.optim.AdamW and torch.optim.SGD compute it (checked in
 * OptimizerTest): {@code p <- p·(1 - lr·wd)}, then {@code p <- p - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)}.
 *
 * <p>The update, the gradient norm, clipping and zeroing are plain Java loops over the parameters'
 * native memory, not an ND4J op per tensor (each costs ~10-20 us of dispatch and wakes ND4J's OpenMP
 * threads): the parameters are cut into pieces of {@link #PIECE} values that never straddle two
 * tensors, and the pieces run in parallel on the fork-join pool ({@link Threads}). Each piece is
 * copied into per-slot scratch, updated there and copied back. The piece size is fixed, so the
 * norm's partial sums, added in piece order, are the same whatever the core count. Arithmetic is
 * in the parameters' type (float32 as PyTorch does for float32 parameters). Nothing is allocated
 * per step once the first step has sized the scratch.
 *
 * <p>The moments live in one flat native buffer of the parameters' type, parameter after parameter,
 * each as m then v. They are exposed by name for checkpoints ({@link #state()}), so a resumed run
 * continues bit-identically.
 */
public final class Optimizer {
    public enum Kind {
        ADAMW, SGD;

        public static Kind parse(String s) {
            try {
                return valueOf(s.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("optimizer must be adamw or sgd, got '" + s + "'");
            }
        }
    }

    /**
     * Values per piece of the parallel loops: four float pieces (p, g, m, v) take 64 KB of scratch
     * and stay in L2. Fixed, never derived from the core count (see the class comment).
     */
    static final int PIECE = 1 << 12;

    private final Kind kind;
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final List<Parameter> params;
    private final DataType dtype;
    private final Mem[] values;
    private final Mem[] grads;
    private final INDArray moments;      // [2·Σlen], per parameter m then v; null for SGD
    private final Mem mv;
    private final long[] momentStart;    // per parameter: where its m starts in moments
    // Piece k covers values pieceFrom[k] until pieceTo[k] of parameter pieceParam[k].
    private final int[] pieceParam;
    private final int[] pieceFrom;
    private final int[] pieceTo;
    private final double[] pieceSums;    // per piece: its sum of squared gradients
    private Scratch[] scratch = new Scratch[0];
    private int step;

    private Optimizer(Kind kind, double beta1, double beta2, double eps, double weightDecay, List<Parameter> params) {
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new IllegalArgumentException("weight decay must be finite and >= 0, got " + weightDecay);
        }
        if (kind == Kind.ADAMW && (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0))) {
            throw new IllegalArgumentException("AdamW needs 0 <= beta1, beta2 < 1 and eps > 0, got "
                    + beta1 + ", " + beta2 + ", " + eps);
        }
        // Every training run builds one optimizer: the first use where the wait policy's cost shows.
        Threads.noteIfWaitPolicyUnset();
        this.kind = kind;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.params = List.copyOf(params);
        this.dtype = params.isEmpty() ? DataType.FLOAT : params.get(0).value().dataType();
        int n = this.params.size();
        values = new Mem[n];
        grads = new Mem[n];
        momentStart = new long[n];
        List<int[]> pieces = new ArrayList<>();
        long total = 0;
        for (int i = 0; i < n; i++) {
            Parameter p = this.params.get(i);
            if (p.value().dataType() != dtype || p.grad().dataType() != dtype) {
                throw new IllegalArgumentException("all parameters and gradients must share one data type: '"
                        + params.get(0).name() + "' is " + dtype + ", '" + p.name() + "' has value "
                        + p.value().dataType() + " and gradient " + p.grad().dataType());
            }
            values[i] = new Mem(p.value(), p.name());
            grads[i] = new Mem(p.grad(), p.name() + " (gradient)");
            if (values[i].order != grads[i].order) {
                throw new IllegalArgumentException(p.name() + ": value is in '" + values[i].order
                        + "' order and gradient in '" + grads[i].order + "' order; they must match");
            }
            momentStart[i] = total;
            int len = Math.toIntExact(p.value().length());
            total += 2L * len;
            for (int from = 0; from < len; from += PIECE) {
                pieces.add(new int[]{i, from, Math.min(len, from + PIECE)});
            }
        }
        pieceParam = new int[pieces.size()];
        pieceFrom = new int[pieces.size()];
        pieceTo = new int[pieces.size()];
        for (int k = 0; k < pieces.size(); k++) {
            pieceParam[k] = pieces.get(k)[0];
            pieceFrom[k] = pieces.get(k)[1];
            pieceTo[k] = pieces.get(k)[2];
        }
        pieceSums = new double[pieces.size()];
        if (kind == Kind.ADAMW && n > 0) {
            if (total > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("AdamW's moments of " + total / 2 + " parameters exceed one buffer of "
                        + Integer.MAX_VALUE + " values");
            }
            moments = Nd4j.zeros(dtype, total);
            mv = new Mem(moments, "AdamW moments");
        } else {
            moments = null;
            mv = null;
        }
    }

    /** AdamW with PyTorch's default betas (0.9, 0.999) and eps 1e-8. */
    public static Optimizer adamw(List<Parameter> params, double weightDecay) {
        return new Optimizer(Kind.ADAMW, 0.9, 0.999, 1e-8, weightDecay, params);
    }

    /** Plain SGD (no momentum), with decoupled weight decay if non-zero. */
    public static Optimizer sgd(List<Parameter> params, double weightDecay) {
        return new Optimizer(Kind.SGD, 0, 0, 0, weightDecay, params);
    }

    public static Optimizer create(Kind kind, List<Parameter> params, double weightDecay) {
        return kind == Kind.ADAMW ? adamw(params, weightDecay) : sgd(params, weightDecay);
    }

    /** One update of every parameter from its gradient at learning rate {@code lr}; gradients are left as they are. */
    public void step(double lr) {
        int t = step + 1;
        double decay = 1.0 - lr * weightDecay;
        double stepSize = kind == Kind.ADAMW ? lr / (1 - Math.pow(beta1, t)) : lr;
        double bc2Sqrt = kind == Kind.ADAMW ? Math.sqrt(1 - Math.pow(beta2, t)) : 1;
        forEachPiece((s, k) -> {
            int i = pieceParam[k];
            int from = pieceFrom[k];
            int len = pieceTo[k] - from;
            Mem p = values[i];
            Mem g = grads[i];
            int m = Math.toIntExact(momentStart[i] + from);
            int v = Math.toIntExact(momentStart[i] + p.length + from);
            if (dtype == DataType.FLOAT) {
                p.read(from, s.f0, len);
                g.read(from, s.f1, len);
                if (kind == Kind.SGD) {
                    sgdFloat(s.f0, s.f1, len, (float) decay, (float) lr);
                } else {
                    mv.read(m, s.f2, len);
                    mv.read(v, s.f3, len);
                    adamwFloat(s.f0, s.f1, s.f2, s.f3, len, (float) decay, (float) stepSize, (float) bc2Sqrt);
                    mv.write(m, s.f2, len);
                    mv.write(v, s.f3, len);
                }
                p.write(from, s.f0, len);
            } else {
                p.read(from, s.d0, len);
                g.read(from, s.d1, len);
                if (kind == Kind.SGD) {
                    sgdDouble(s.d0, s.d1, len, decay, lr);
                } else {
                    mv.read(m, s.d2, len);
                    mv.read(v, s.d3, len);
                    adamwDouble(s.d0, s.d1, s.d2, s.d3, len, decay, stepSize, bc2Sqrt);
                    mv.write(m, s.d2, len);
                    mv.write(v, s.d3, len);
                }
                p.write(from, s.d0, len);
            }
        });
        step = t;
    }

    // torch.optim.AdamW's single-tensor update, operation for operation:
    // p·(1 − lr·wd); m·β1 + g·(1 − β1); v·β2 + (1 − β2)·g·g; p − stepSize·(m / (sqrt(v) / sqrt(bc2) + eps)).
    private void adamwFloat(float[] p, float[] g, float[] m, float[] v, int len, float decay, float stepSize,
                            float bc2Sqrt) {
        float b1 = (float) beta1;
        float c1 = (float) (1 - beta1);
        float b2 = (float) beta2;
        float c2 = (float) (1 - beta2);
        float e = (float) eps;
        for (int j = 0; j < len; j++) {
            float gj = g[j];
            float mj = m[j] * b1 + gj * c1;
            float vj = v[j] * b2 + c2 * gj * gj;
            m[j] = mj;
            v[j] = vj;
            float denom = (float) Math.sqrt(vj) / bc2Sqrt + e;
            p[j] = p[j] * decay - stepSize * (mj / denom);
        }
    }

    private void adamwDouble(double[] p, double[] g, double[] m, double[] v, int len, double decay, double stepSize,
                             double bc2Sqrt) {
        double c1 = 1 - beta1;
        double c2 = 1 - beta2;
        for (int j = 0; j < len; j++) {
            double gj = g[j];
            double mj = m[j] * beta1 + gj * c1;
            double vj = v[j] * beta2 + c2 * gj * gj;
            m[j] = mj;
            v[j] = vj;
            double denom = Math.sqrt(vj) / bc2Sqrt + eps;
            p[j] = p[j] * decay - stepSize * (mj / denom);
        }
    }

    private static void sgdFloat(float[] p, float[] g, int len, float decay, float lr) {
        for (int j = 0; j < len; j++) {
            p[j] = p[j] * decay - lr * g[j];
        }
    }

    private static void sgdDouble(double[] p, double[] g, int len, double decay, double lr) {
        for (int j = 0; j < len; j++) {
            p[j] = p[j] * decay - lr * g[j];
        }
    }

    /** Optimizer steps taken so far. */
    public int stepCount() {
        return step;
    }

    public Kind kind() {
        return kind;
    }

    public List<Parameter> parameters() {
        return params;
    }

    /**
     * The live moments by parameter name ({@code name + ".adam_mv"}, [1, 2·len], m then v, views of
     * the one flat buffer); empty for SGD.
     */
    public Map<String, INDArray> state() {
        Map<String, INDArray> s = new LinkedHashMap<>();
        if (moments != null) {
            for (int i = 0; i < params.size(); i++) {
                s.put(params.get(i).name() + ".adam_mv", moments(i));
            }
        }
        return s;
    }

    private INDArray moments(int i) {
        long len = values[i].length;
        return moments.get(NDArrayIndex.interval(momentStart[i], momentStart[i] + 2 * len)).reshape(1, 2 * len);
    }

    /** Restores moments saved by {@link #state()} and the step count; every parameter must be present. */
    public void loadState(Map<String, INDArray> saved, int stepCount) {
        if (moments != null) {
            for (int i = 0; i < params.size(); i++) {
                String key = params.get(i).name() + ".adam_mv";
                INDArray v = saved.get(key);
                if (v == null) {
                    throw new IllegalArgumentException("optimizer state has no entry '" + key + "'");
                }
                INDArray mine = moments(i);
                if (v.length() != mine.length()) {
                    throw new IllegalArgumentException("optimizer state '" + key + "' has " + v.length()
                            + " values, expected " + mine.length() + " (shape " + Arrays.toString(mine.shape()) + ")");
                }
                mine.assign(v.reshape(mine.shape()).castTo(dtype));
            }
        }
        this.step = stepCount;
    }

    /** sqrt of the sum of squared gradients over all parameters, summed in double piece by piece in a fixed order. */
    public double gradNorm() {
        forEachPiece((s, k) -> {
            int len = pieceTo[k] - pieceFrom[k];
            Mem g = grads[pieceParam[k]];
            if (dtype == DataType.FLOAT) {
                g.read(pieceFrom[k], s.f1, len);
                pieceSums[k] = sumSquares(s.f1, len);
            } else {
                g.read(pieceFrom[k], s.d1, len);
                pieceSums[k] = sumSquares(s.d1, len);
            }
        });
        double sum = 0;
        for (double x : pieceSums) {
            sum += x;
        }
        return Math.sqrt(sum);
    }

    // Four running sums so the additions do not wait on each other; the order is fixed, so the
    // result is the same on every run.
    private static double sumSquares(float[] a, int len) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int j = 0;
        for (; j + 3 < len; j += 4) {
            s0 += (double) a[j] * a[j];
            s1 += (double) a[j + 1] * a[j + 1];
            s2 += (double) a[j + 2] * a[j + 2];
            s3 += (double) a[j + 3] * a[j + 3];
        }
        for (; j < len; j++) {
            s0 += (double) a[j] * a[j];
        }
        return (s0 + s1) + (s2 + s3);
    }

    private static double sumSquares(double[] a, int len) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int j = 0;
        for (; j + 3 < len; j += 4) {
            s0 += a[j] * a[j];
            s1 += a[j + 1] * a[j + 1];
            s2 += a[j + 2] * a[j + 2];
            s3 += a[j + 3] * a[j + 3];
        }
        for (; j < len; j++) {
            s0 += a[j] * a[j];
        }
        return (s0 + s1) + (s2 + s3);
    }

    /**
     * Scales all gradients so their global norm is at most {@code maxNorm}, as
     * {@code torch.nn.utils.clip_grad_norm_} does (factor maxNorm / (norm + 1e-6), only when below 1).
     *
     * @return the norm before clipping
     */
    public double clipGradNorm(double maxNorm) {
        double norm = gradNorm();
        if (maxNorm > 0) {
            double factor = maxNorm / (norm + 1e-6);
            if (factor < 1) {
                scaleGrads(factor);
            }
        }
        return norm;
    }

    private void scaleGrads(double factor) {
        forEachPiece((s, k) -> {
            int len = pieceTo[k] - pieceFrom[k];
            Mem g = grads[pieceParam[k]];
            if (dtype == DataType.FLOAT) {
                float[] a = s.f1;
                float f = (float) factor;
                g.read(pieceFrom[k], a, len);
                for (int j = 0; j < len; j++) {
                    a[j] *= f;
                }
                g.write(pieceFrom[k], a, len);
            } else {
                double[] a = s.d1;
                g.read(pieceFrom[k], a, len);
                for (int j = 0; j < len; j++) {
                    a[j] *= factor;
                }
                g.write(pieceFrom[k], a, len);
            }
        });
    }

    /** Sets every gradient to zero. */
    public void zeroGrad() {
        forEachPiece((s, k) -> {
            int len = pieceTo[k] - pieceFrom[k];
            Mem g = grads[pieceParam[k]];
            if (dtype == DataType.FLOAT) {
                g.write(pieceFrom[k], s.zerosF, len);
            } else {
                g.write(pieceFrom[k], s.zerosD, len);
            }
        });
    }

    private interface PieceTask {
        void run(Scratch s, int piece);
    }

    /** Runs task(scratch, k) for every piece k, in parallel over contiguous ranges of pieces, one scratch per slot. */
    private void forEachPiece(PieceTask task) {
        int pieces = pieceParam.length;
        if (pieces == 0) {
            return;
        }
        int parts = Threads.slots(pieces);
        if (scratch.length < parts) {
            Scratch[] s = Arrays.copyOf(scratch, parts);
            for (int i = scratch.length; i < parts; i++) {
                s[i] = new Scratch(dtype);
            }
            scratch = s;
        }
        Scratch[] sc = scratch;
        Threads.parallelFor(parts, part -> {
            for (int k = Threads.rangeStart(part, parts, pieces); k < Threads.rangeStart(part + 1, parts, pieces); k++) {
                task.run(sc[part], k);
            }
        });
    }

    /** One slot's copies of a piece: p, g, m, v, in the parameters' type, and a piece of zeros. */
    private static final class Scratch {
        final float[] f0;
        final float[] f1;
        final float[] f2;
        final float[] f3;
        final float[] zerosF;
        final double[] d0;
        final double[] d1;
        final double[] d2;
        final double[] d3;
        final double[] zerosD;

        Scratch(DataType dtype) {
            boolean f = dtype == DataType.FLOAT;
            f0 = f ? new float[PIECE] : null;
            f1 = f ? new float[PIECE] : null;
            f2 = f ? new float[PIECE] : null;
            f3 = f ? new float[PIECE] : null;
            zerosF = f ? new float[PIECE] : null;
            d0 = f ? null : new double[PIECE];
            d1 = f ? null : new double[PIECE];
            d2 = f ? null : new double[PIECE];
            d3 = f ? null : new double[PIECE];
            zerosD = f ? null : new double[PIECE];
        }
    }

    /**
     * A dense parameter, value or gradient, as the optimizer walks it: its elements in memory order
     * through the shared native view ({@link NativeBuffer}), read and written in bulk by element index.
     */
    private static final class Mem {
        final int length;
        final char order;            // 'c' or 'f': the order the elements lie in memory
        private final NativeBuffer buf;

        Mem(INDArray a, String name) {
            DataType type = a.dataType();
            if (type != DataType.FLOAT && type != DataType.DOUBLE) {
                throw new IllegalArgumentException(name + ": the optimizer updates FLOAT or DOUBLE tensors, got " + type);
            }
            long[] shape = a.shape();
            long[] stride = a.stride();
            order = dense(shape, stride, true) ? 'c' : dense(shape, stride, false) ? 'f' : 0;
            if (order == 0) {
                throw new IllegalArgumentException(name + ": the optimizer needs a dense tensor, got shape "
                        + Arrays.toString(shape) + " with strides " + Arrays.toString(stride));
            }
            if (a.length() > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(name + ": " + a.length()
                        + " elements, more than the optimizer's pieces can index");
            }
            length = (int) a.length();
            buf = NativeBuffer.of(a);
        }

        /** True when the strides are those of a contiguous array in C order (or F order), size-1 axes ignored. */
        private static boolean dense(long[] shape, long[] stride, boolean c) {
            long expect = 1;
            for (int k = 0; k < shape.length; k++) {
                int i = c ? shape.length - 1 - k : k;
                if (shape[i] != 1 && stride[i] != expect) {
                    return false;
                }
                expect *= shape[i];
            }
            return true;
        }

        void read(int from, float[] dst, int len) {
            buf.read(from, dst, 0, len);
        }

        void read(int from, double[] dst, int len) {
            buf.read(from, dst, 0, len);
        }

        void write(int from, float[] src, int len) {
            buf.write(src, 0, from, len);
        }

        void write(int from, double[] src, int len) {
            buf.write(src, 0, from, len);
        }
    }
}

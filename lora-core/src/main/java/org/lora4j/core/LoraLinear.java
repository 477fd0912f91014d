package org.lora4j.core;

import org.bytedeco.openblas.global.openblas;
import org.lora4j.core.internal.Blas;
import org.lora4j.core.internal.NativeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.rng.Random;
import org.nd4j.linalg.api.ops.random.impl.BernoulliDistribution;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * A linear layer over a frozen base weight W [out, in] (PyTorch orientation) with named LoRA
 * adapters, one active at a time:
 * <pre>  y = x Wᵀ + bias + scaling · multiplier · dropout(x) Aᵀ Bᵀ</pre>
 *
 * <h2>Hot path</h2>
 * B·A is never formed. The adapter term is folded into the base product by concatenating along
 * the inner dimension, so one gemm writes the output once:
 * <pre>  y = [x | 1 | s·(x Aᵀ)] · [W | bias | B]ᵀ</pre>
 * W, the bias column and a slot for the active B live side by side in one column-major buffer
 * {@code wcat} [out, in + 1 + maxRank]; the input is copied into the matching buffer {@code xcat}
 * [n, in + 1 + maxRank] (or written there directly by the caller via {@link #inputBuffer(long)}).
 * The plain chain (base gemm, then the rank-r product accumulated with beta = 1) makes one more
 * pass over the output; see docs/performance.md for the measured difference.
 *
 * <p>Buffers are allocated once per batch size n and reused; {@link #forward} and
 * {@link #backward} allocate nothing when n does not change. Outputs passed in must be 'f'-order
 * arrays that are not views, because gemm writes into them directly.
 *
 * <p>Not thread-safe: the layer caches the activations of its most recent forward for backward.
 */
public final class LoraLinear {
    private static final String NO_ADAPTER = null;

    private final String name;
    private final long in;
    private final long out;
    private final DataType dtype;
    private final boolean hasBias;
    private final long biasCols;       // 1 with a bias, else 0: the column of ones in xcat

    private INDArray wcat;             // [out, in + biasCols + slotRank], 'f': W | bias | B slot
    private INDArray weight;           // [out, in] view of wcat's first out*in elements
    private INDArray bias;             // [out] view of wcat's bias column, or null
    private long slotRank;             // columns reserved for B in wcat

    private final Map<String, LoraAdapter> adapters = new LinkedHashMap<>();
    private String active = NO_ADAPTER;
    private boolean adaptersEnabled = true;
    private String mergedAdapter = NO_ADAPTER;
    private double mergedFactor;       // scaling·multiplier at merge time, so unmerge subtracts what merge added

    private boolean training;
    private boolean weightsTrainable;
    private INDArray gradWcat;         // [out, in + biasCols], 'f': dW | dbias, when weights are trainable
    private Random dropoutRng;
    private long dropoutSeed;

    // Per-batch-size activation buffers (reallocated only when n changes).
    private long n = -1;
    private INDArray xcat;             // [n, in + biasCols + slotRank], 'f': x | 1 | s·t
    private INDArray xPrefix;          // [n, in] view of xcat
    private INDArray t;                // [n, r] 'f': s·m·dropout(x)·Aᵀ (before its copy into xcat)
    private INDArray u;                // [n, r] 'f': dOut·B
    private INDArray dropped;          // [n, in] 'f': dropout(x), only with dropout in training
    private INDArray mask;             // [n, in] 'f': 0 or 1/(1-p)
    private INDArray dxTmp;            // [n, in] 'f': adapter part of dX under dropout
    // BLAS descriptions of the buffers above, built when a buffer is (re)allocated, so the hot path
    // allocates nothing (Blas explains why not Nd4j.gemm).
    private Blas.Operand wBaseOp;      // wcat's first in + biasCols columns
    private Blas.Operand wFullOp;      // wcat's first in + biasCols + wFullRank columns
    private long wFullRank = -1;
    private Blas.Operand weightOp;     // W
    private Blas.Operand gradWcatOp;
    private Blas.Operand xBaseOp;      // xcat's first in + biasCols columns
    private Blas.Operand xFullOp;      // xcat's first in + biasCols + xFullRank columns
    private long xFullRank = -1;
    private Blas.Operand xPrefixOp;
    private Blas.Operand tOp;
    private Blas.Operand uOp;
    private Blas.Operand droppedOp;
    private Runnable copyT;            // t into xcat's t columns
    private INDArray lastX;            // the caller's input of the last forward, and its copy into xcat
    private Runnable copyLastX;
    private Blas.Operand dxTmpOp;
    private final java.util.IdentityHashMap<LoraAdapter, Blas.Operand[]> adapterOps = new java.util.IdentityHashMap<>();
    private final java.util.IdentityHashMap<LoraAdapter, Runnable> copyB = new java.util.IdentityHashMap<>();
    private final INDArray[] seen = new INDArray[4];              // caller arrays seen lately (out, dOut, dX)
    private final Blas.Operand[] seenOps = new Blas.Operand[4];
    private int seenNext;
    private boolean lastForwardUsedAdapter;
    private boolean lastForwardDropped;

    /** A layer with no name (errors say "layer"). */
    public LoraLinear(INDArray weight, INDArray bias) {
        this("layer", weight, bias);
    }

    /**
     * @param name   the module path used in error messages and adapter files, e.g. {@code model.layers.2.mlp.down_proj}
     * @param weight [out, in]; copied. FLOAT and DOUBLE are kept; HALF and BFLOAT16 are widened to FLOAT
     *               because the CPU gemm runs in float32 or wider.
     * @param bias   [out] or null; copied
     */
    public LoraLinear(String name, INDArray weight, INDArray bias) {
        this.name = Objects.requireNonNull(name, "name");
        Objects.requireNonNull(weight, "weight");
        if (weight.rank() != 2) {
            throw new IllegalArgumentException(name + ": weight must be [out, in], got shape "
                    + Arrays.toString(weight.shape()));
        }
        this.out = weight.size(0);
        this.in = weight.size(1);
        this.dtype = weight.dataType() == DataType.DOUBLE ? DataType.DOUBLE : DataType.FLOAT;
        if (!weight.dataType().isFPType()) {
            throw new IllegalArgumentException(name + ": weight must be floating point, got " + weight.dataType());
        }
        if (bias != null && bias.length() != out) {
            throw new IllegalArgumentException(name + ": bias must have " + out + " elements (weight "
                    + Arrays.toString(weight.shape()) + "), got shape " + Arrays.toString(bias.shape()));
        }
        this.hasBias = bias != null;
        this.biasCols = hasBias ? 1 : 0;
        allocateWeights(0, weight.castTo(dtype), hasBias ? bias.castTo(dtype).reshape(out) : null);
        this.dropoutSeed = 0;
    }

    private void allocateWeights(long rank, INDArray w, INDArray b) {
        INDArray cat = Nd4j.createUninitialized(dtype, new long[]{out, in + biasCols + rank}, 'f');
        INDArray wView = cat.get(NDArrayIndex.all(), NDArrayIndex.interval(0, in));
        wView.assign(w);
        INDArray bView = null;
        if (hasBias) {
            bView = cat.get(NDArrayIndex.all(), NDArrayIndex.point(in));
            bView.assign(b);
        }
        this.wcat = cat;
        this.weight = wView;
        this.bias = bView;
        this.slotRank = rank;
        this.n = -1;  // xcat's width follows slotRank
        this.wBaseOp = Blas.operand(columns(cat, in + biasCols));
        this.weightOp = Blas.operand(wView);
        this.wFullRank = -1;
        copyB.clear();   // they point into the old wcat
        if (weightsTrainable && gradWcat == null) {
            gradWcat = Nd4j.zeros(dtype, out, in + biasCols).dup('f');
            gradWcatOp = Blas.operand(gradWcat);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Adapters

    /**
     * Adds an adapter initialised as {@code config.init()} says, with its own seeded RNG; the first
     * adapter added becomes active. With {@link LoraConfig.Init#PISSA} the principal part of W moves
     * into the adapter, so W itself changes.
     */
    public LoraAdapter addAdapter(String adapterName, LoraConfig config, long seed) {
        checkNewAdapter(adapterName, config);
        int r = config.rank();
        SplittableRandom rng = new SplittableRandom(seed);
        INDArray a;
        INDArray b;
        switch (config.init()) {
            case DEFAULT -> {
                a = kaimingUniform(rng, r, in);
                b = Nd4j.zeros(dtype, out, r);
            }
            case GAUSSIAN -> {
                a = gaussian(rng, r, in, 1.0 / r);
                b = Nd4j.zeros(dtype, out, r);
            }
            case RANDOM -> {
                a = kaimingUniform(rng, r, in);
                b = kaimingUniform(rng, out, r);
            }
            case PISSA -> {
                INDArray[] ab = pissa(config);
                a = ab[0];
                b = ab[1];
            }
            default -> throw new IllegalStateException("unhandled init " + config.init());
        }
        return putAdapter(adapterName, config, a, b);
    }

    /** Adds an adapter with the given weights (copied), e.g. loaded from a PEFT file. */
    public LoraAdapter addAdapter(String adapterName, LoraConfig config, INDArray a, INDArray b) {
        checkNewAdapter(adapterName, config);
        long r = config.rank();
        if (a.rank() != 2 || a.size(0) != r || a.size(1) != in) {
            throw new IllegalArgumentException(name + ": adapter '" + adapterName + "' lora_A must be [" + r
                    + ", " + in + "], got " + Arrays.toString(a.shape()));
        }
        if (b.rank() != 2 || b.size(0) != out || b.size(1) != r) {
            throw new IllegalArgumentException(name + ": adapter '" + adapterName + "' lora_B must be [" + out
                    + ", " + r + "], got " + Arrays.toString(b.shape()));
        }
        return putAdapter(adapterName, config, a.castTo(dtype), b.castTo(dtype));
    }

    private void checkNewAdapter(String adapterName, LoraConfig config) {
        Objects.requireNonNull(adapterName, "adapterName");
        Objects.requireNonNull(config, "config");
        if (adapters.containsKey(adapterName)) {
            throw new IllegalArgumentException(name + ": adapter '" + adapterName + "' already exists");
        }
        // B·A has rank at most min(out, in): a larger r only adds parameters, and such a config is
        // almost always a module path or a rank typed wrong, so it is refused rather than trained.
        if (config.rank() > Math.min(in, out)) {
            throw new IllegalArgumentException(name + ": adapter '" + adapterName + "' rank r = " + config.rank()
                    + " exceeds the layer's smaller dimension min(out " + out + ", in " + in + ") = " + Math.min(in, out)
                    + " (weight [" + out + ", " + in + "])");
        }
    }

    private LoraAdapter putAdapter(String adapterName, LoraConfig config, INDArray a, INDArray b) {
        // Own 'f'-order copies: B is memcpy'd into wcat's slot, which needs column-major contiguity.
        LoraAdapter adapter = new LoraAdapter(adapterName, config, a.dup('f'), b.dup('f'));
        if (config.rank() > slotRank) {
            allocateWeights(config.rank(), weight, bias);
        }
        adapters.put(adapterName, adapter);
        if (active == NO_ADAPTER) {
            active = adapterName;
        }
        return adapter;
    }

    /** Makes the named adapter the one forward and backward use. Refused while an adapter is merged. */
    public void setActiveAdapter(String adapterName) {
        if (!adapters.containsKey(adapterName)) {
            throw new IllegalArgumentException(name + ": no adapter '" + adapterName + "'; have " + adapters.keySet());
        }
        if (mergedAdapter != NO_ADAPTER && !mergedAdapter.equals(adapterName)) {
            throw new IllegalStateException(name + ": adapter '" + mergedAdapter + "' is merged; unmerge before switching");
        }
        active = adapterName;
    }

    /** Removes an adapter. Refused for a merged adapter. */
    public void deleteAdapter(String adapterName) {
        if (adapterName.equals(mergedAdapter)) {
            throw new IllegalStateException(name + ": adapter '" + adapterName + "' is merged; unmerge before deleting");
        }
        LoraAdapter removed = adapters.remove(adapterName);
        adapterOps.remove(removed);
        copyB.remove(removed);
        if (removed == null) {
            throw new IllegalArgumentException(name + ": no adapter '" + adapterName + "'; have " + adapters.keySet());
        }
        if (adapterName.equals(active)) {
            active = adapters.isEmpty() ? NO_ADAPTER : adapters.keySet().iterator().next();
        }
    }

    /** The active adapter, or null when the layer has none. */
    public LoraAdapter activeAdapter() {
        return active == NO_ADAPTER ? null : adapters.get(active);
    }

    public LoraAdapter adapter(String adapterName) {
        LoraAdapter a = adapters.get(adapterName);
        if (a == null) {
            throw new IllegalArgumentException(name + ": no adapter '" + adapterName + "'; have " + adapters.keySet());
        }
        return a;
    }

    public List<String> adapterNames() {
        return Collections.unmodifiableList(new ArrayList<>(adapters.keySet()));
    }

    /** Turns all adapters off (the base layer alone) or back on; merged weights are not touched. */
    public void setAdaptersEnabled(boolean enabled) {
        this.adaptersEnabled = enabled;
    }

    public boolean adaptersEnabled() {
        return adaptersEnabled;
    }

    // ---------------------------------------------------------------------------------------------
    // Merge

    /**
     * Folds the active adapter into W: {@code W += scaling · multiplier · B A}, computed in float32
     * or wider. Refuses an adapter whose weights hold NaN or Inf, and leaves W untouched then.
     */
    public void merge() {
        LoraAdapter adapter = activeAdapter();
        if (adapter == null) {
            throw new IllegalStateException(name + ": no adapter to merge");
        }
        if (mergedAdapter != NO_ADAPTER) {
            throw new IllegalStateException(name + ": adapter '" + mergedAdapter + "' is already merged");
        }
        double factor = adapter.scaling() * adapter.multiplier();
        INDArray delta = delta(adapter, factor);
        weight.addi(delta.castTo(dtype));
        mergedAdapter = adapter.name();
        mergedFactor = factor;
    }

    /** Subtracts the merged adapter from W again; exact up to rounding. */
    public void unmerge() {
        if (mergedAdapter == NO_ADAPTER) {
            throw new IllegalStateException(name + ": no adapter is merged");
        }
        INDArray delta = delta(adapters.get(mergedAdapter), mergedFactor);
        weight.subi(delta.castTo(dtype));
        mergedAdapter = NO_ADAPTER;
    }

    public boolean isMerged() {
        return mergedAdapter != NO_ADAPTER;
    }

    private INDArray delta(LoraAdapter adapter, double factor) {
        INDArray a = adapter.a().castTo(DataType.DOUBLE);
        INDArray b = adapter.b().castTo(DataType.DOUBLE);
        if (!isFinite(a) || !isFinite(b)) {
            throw new IllegalStateException(name + ": adapter '" + adapter.name()
                    + "' holds NaN or Inf; refusing to merge it into the base weight");
        }
        INDArray d = Nd4j.createUninitialized(DataType.DOUBLE, new long[]{out, in}, 'f');
        Nd4j.gemm(b, a, d, false, false, factor, 0.0);  // [out, r] x [r, in]; off the hot path
        if (!isFinite(d)) {
            throw new IllegalStateException(name + ": merging adapter '" + adapter.name() + "' overflows");
        }
        return d;
    }

    private static boolean isFinite(INDArray x) {
        double s = x.sumNumber().doubleValue();
        return Double.isFinite(s) && !Double.isNaN(x.amaxNumber().doubleValue());
    }

    // ---------------------------------------------------------------------------------------------
    // Training switches

    /** Training mode applies dropout to the adapter input; evaluation mode does not. */
    public void setTraining(boolean training) {
        this.training = training;
    }

    public boolean isTraining() {
        return training;
    }

    /** Seeds the dropout RNG (each layer has its own stream, so runs are reproducible). */
    public void setDropoutSeed(long seed) {
        this.dropoutSeed = seed;
        // Re-seed the one native generator rather than making a new one per call: ND4J frees the
        // native state of a discarded generator from a GC-driven thread, and creating thousands of
        // them (one per step and layer) is where the test JVM crashed intermittently.
        if (dropoutRng != null) {
            dropoutRng.setSeed(seed);
        }
    }

    public long dropoutSeed() {
        return dropoutSeed;
    }

    /**
     * Whether backward computes gradients of W and bias (full-parameter training). Off by default:
     * a frozen layer holds no gradient memory.
     */
    public void setWeightsTrainable(boolean trainable) {
        this.weightsTrainable = trainable;
        if (trainable && gradWcat == null) {
            gradWcat = Nd4j.zeros(dtype, out, in + biasCols).dup('f');
            gradWcatOp = Blas.operand(gradWcat);
        } else if (!trainable) {
            gradWcat = null;
            gradWcatOp = null;
        }
    }

    public boolean weightsTrainable() {
        return weightsTrainable;
    }

    // ---------------------------------------------------------------------------------------------
    // Forward and backward

    /**
     * The buffer the next forward reads its input from, [n, in] 'f'. A caller that writes its input
     * here and passes this same array to {@link #forward} saves one copy of x.
     */
    public INDArray inputBuffer(long batch) {
        ensureBuffers(batch);
        return xPrefix;
    }

    /**
     * {@code out = x Wᵀ + bias + scaling · multiplier · dropout(x) Aᵀ Bᵀ}.
     *
     * @param x   [n, in], any order (copied into the layer's input buffer unless it is that buffer)
     * @param dst [n, out], 'f' order, not a view; overwritten
     */
    public void forward(INDArray x, INDArray dst) {
        long rows = checkRows(x, in, "x");
        checkOutput(dst, rows, out, "out");
        ensureBuffers(rows);
        if (x != xPrefix) {
            if (NativeBuffer.isContiguousF(x) && x.dataType() == dtype) {
                copyX(x).run();
            } else {
                xPrefix.assign(x);
            }
        }
        LoraAdapter adapter = usableAdapter();
        lastForwardUsedAdapter = adapter != null;
        lastForwardDropped = false;
        Blas.Operand dstOp = operand(dst);
        if (adapter == null) {
            Blas.gemm(xBaseOp, false, wBaseOp, true, dstOp, 1.0, 0.0);
            return;
        }
        long r = adapter.rank();
        INDArray xd = xPrefix;
        if (training && adapter.config().dropout() > 0) {
            xd = applyDropout(adapter.config().dropout());
            lastForwardDropped = true;
        }
        double s = adapter.scaling() * adapter.multiplier();
        ensureRankBuffers(r);
        Blas.Operand[] ab = adapterOperands(adapter);
        Blas.gemm(xd == xPrefix ? xPrefixOp : droppedOp, false, ab[0], true, tOp, s, 0.0);   // t = s·m·xd·Aᵀ [n, r]
        copyT.run();                                                     // t into xcat's t columns
        copyB(adapter).run();                                            // active B into wcat's slot
        Blas.gemm(xFullOp, false, wFull(r), true, dstOp, 1.0, 0.0);
    }

    /**
     * Backward through the most recent {@link #forward}: accumulates the gradients of the active
     * adapter's A and B (and of W and bias when {@link #setWeightsTrainable weights are trainable}),
     * and writes the input gradient.
     *
     * @param dOut [n, out], the gradient of the loss with respect to this layer's output
     * @param dX   [n, in] 'f', not a view, overwritten with the input gradient; null to skip it
     */
    public void backward(INDArray dOut, INDArray dX) {
        backward(dOut, dX, 0.0);
    }

    /** As {@link #backward(INDArray, INDArray)} but adds the input gradient into {@code dX}. */
    public void backwardAccumulate(INDArray dOut, INDArray dX) {
        backward(dOut, Objects.requireNonNull(dX, "dX"), 1.0);
    }

    private void backward(INDArray dOut, INDArray dX, double dxBeta) {
        if (n < 0) {
            throw new IllegalStateException(name + ": backward before forward");
        }
        long rows = checkRows(dOut, out, "dOut");
        if (rows != n) {
            throw new IllegalArgumentException(name + ": dOut has " + rows + " rows but the last forward had " + n);
        }
        if (dX != null) {
            checkOutput(dX, n, in, "dX");
        }
        LoraAdapter adapter = lastForwardUsedAdapter ? usableAdapter() : null;
        if (lastForwardUsedAdapter && (adapter == null || adapter.rank() != t.size(1))) {
            throw new IllegalStateException(name + ": the adapter changed between forward and backward");
        }
        Blas.Operand dOutOp = operand(dOut);
        Blas.Operand dXOp = dX == null ? null : operand(dX);
        if (weightsTrainable) {
            // dW | dbias in one product: the ones column of xcat turns the bias gradient into a column sum.
            Blas.gemm(dOutOp, true, xBaseOp, false, gradWcatOp, 1.0, 1.0);
        }
        if (dX != null) {
            Blas.gemm(dOutOp, false, weightOp, false, dXOp, 1.0, dxBeta);   // dOut · W
        }
        if (adapter == null) {
            return;
        }
        double s = adapter.scaling() * adapter.multiplier();
        Blas.Operand xdOp = lastForwardDropped ? droppedOp : xPrefixOp;
        Blas.Operand[] ab = adapterOperands(adapter);   // a, b, gradA, gradB
        Blas.gemm(dOutOp, true, tOp, false, ab[3], 1.0, 1.0);          // dB += dOutᵀ · (s·m·xd Aᵀ)
        Blas.gemm(dOutOp, false, ab[1], false, uOp, 1.0, 0.0);         // u = dOut · B   [n, r]
        Blas.gemm(uOp, true, xdOp, false, ab[2], s, 1.0);              // dA += s·m · uᵀ · xd
        if (dX != null) {
            if (lastForwardDropped) {
                Blas.gemm(uOp, false, ab[0], false, dxTmpOp, s, 0.0);
                dxTmp.muli(mask);
                dX.addi(dxTmp);
            } else {
                Blas.gemm(uOp, false, ab[0], false, dXOp, s, 1.0);     // dX += s·m · u · A
            }
        }
    }

    private INDArray applyDropout(double p) {
        if (dropoutRng == null) {
            dropoutRng = Nd4j.getRandomFactory().getNewRandomInstance(dropoutSeed);
        }
        if (dropped == null) {
            dropped = Nd4j.createUninitialized(dtype, new long[]{n, in}, 'f');
            mask = Nd4j.createUninitialized(dtype, new long[]{n, in}, 'f');
            dxTmp = Nd4j.createUninitialized(dtype, new long[]{n, in}, 'f');
            droppedOp = Blas.operand(dropped);
            dxTmpOp = Blas.operand(dxTmp);
        }
        // mask = Bernoulli(1 - p) / (1 - p), inverted dropout as in torch.nn.Dropout.
        Nd4j.getExecutioner().exec(new BernoulliDistribution(mask, 1.0 - p), dropoutRng);
        mask.divi(1.0 - p);
        dropped.assign(xPrefix).muli(mask);
        return dropped;
    }

    private LoraAdapter usableAdapter() {
        if (!adaptersEnabled || mergedAdapter != NO_ADAPTER || active == NO_ADAPTER) {
            return null;
        }
        return adapters.get(active);
    }

    private void ensureBuffers(long rows) {
        if (rows == n) {
            return;
        }
        long width = in + biasCols + slotRank;
        xcat = Nd4j.createUninitialized(dtype, new long[]{rows, width}, 'f');
        if (hasBias) {
            xcat.get(NDArrayIndex.all(), NDArrayIndex.point(in)).assign(1.0);
        }
        xPrefix = xcat.get(NDArrayIndex.all(), NDArrayIndex.interval(0, in));
        xPrefixOp = Blas.operand(xPrefix);
        copyLastX = null;   // it points into the old xcat
        xBaseOp = Blas.operand(columns(xcat, in + biasCols));
        xFullRank = -1;
        t = null;
        u = null;
        dropped = null;  // dropout buffers are made on first use: most layers never need them
        mask = null;
        dxTmp = null;
        n = rows;
    }

    /** t and u exactly [n, r]: gemm writes into them, so they must not be column views of a wider buffer. */
    private void ensureRankBuffers(long r) {
        if (t == null || t.size(1) != r) {
            t = Nd4j.createUninitialized(dtype, new long[]{n, r}, 'f');
            u = Nd4j.createUninitialized(dtype, new long[]{n, r}, 'f');
            tOp = Blas.operand(t);
            uOp = Blas.operand(u);
            copyT = copyAll(t, xcat, n * (in + biasCols));
        }
        if (xFullRank != r) {
            xFullOp = Blas.operand(columns(xcat, in + biasCols + r));
            xFullRank = r;
        }
    }

    /** The copy of a caller's input into xcat; callers pass the same array step after step. */
    private Runnable copyX(INDArray x) {
        if (x != lastX || copyLastX == null) {
            copyLastX = copyAll(x, xcat, 0);
            lastX = x;
        }
        return copyLastX;
    }

    private Runnable copyB(LoraAdapter adapter) {
        Runnable plan = copyB.get(adapter);
        if (plan == null) {
            plan = copyAll(adapter.b(), wcat, out * (in + biasCols));
            copyB.put(adapter, plan);
        }
        return plan;
    }

    private Blas.Operand wFull(long r) {
        if (wFullRank != r) {
            wFullOp = Blas.operand(columns(wcat, in + biasCols + r));
            wFullRank = r;
        }
        return wFullOp;
    }

    /** a, b, gradA, gradB of an adapter; its arrays are never reassigned, so these stay valid. */
    private Blas.Operand[] adapterOperands(LoraAdapter adapter) {
        Blas.Operand[] ops = adapterOps.get(adapter);
        if (ops == null) {
            ops = new Blas.Operand[]{Blas.operand(adapter.a()), Blas.operand(adapter.b()), Blas.operand(adapter.gradA()),
                    Blas.operand(adapter.gradB())};
            adapterOps.put(adapter, ops);
        }
        return ops;
    }

    /** The operand of a caller's array: the same few arrays come back every step, so remember them. */
    private Blas.Operand operand(INDArray a) {
        for (int i = 0; i < seen.length; i++) {
            if (seen[i] == a) {
                return seenOps[i];
            }
        }
        Blas.Operand op = Blas.operand(a);
        seen[seenNext] = a;
        seenOps[seenNext] = op;
        seenNext = (seenNext + 1) % seen.length;
        return op;
    }

    /**
     * A copy of all of {@code src} (contiguous) into {@code dst}'s buffer from {@code dstFrom} elements
     * past dst's first element, with the buffers looked up once: running it checks types and bounds,
     * allocates nothing and, unlike ND4J's {@code assign}, wakes no OpenMP pool (an element-wise op between two gemm calls
     * left the pool spinning, and on two cores the next gemm ran 2x slower; docs/performance.md).
     */
    private static Runnable copyAll(INDArray src, INDArray dst, long dstFrom) {
        NativeBuffer from = NativeBuffer.of(src);
        NativeBuffer to = NativeBuffer.of(dst);
        long count = src.length();
        return () -> from.copyTo(0, to, dstFrom, count);
    }

    /** The first k columns of an 'f'-order matrix: a zero-offset view that gemm reads in place. */
    private static INDArray columns(INDArray m, long k) {
        return k == m.size(1) ? m : m.get(NDArrayIndex.all(), NDArrayIndex.interval(0, k));
    }

    private long checkRows(INDArray x, long cols, String what) {
        if (x.rank() != 2 || x.size(1) != cols) {
            throw new IllegalArgumentException(name + ": " + what + " must be [n, " + cols + "], got "
                    + Arrays.toString(x.shape()));
        }
        if (x.dataType() != dtype) {
            throw new IllegalArgumentException(name + ": " + what + " must be " + dtype + " like the weight, got "
                    + x.dataType());
        }
        return x.size(0);
    }

    private void checkOutput(INDArray dst, long rows, long cols, String what) {
        if (dst.rank() != 2 || dst.size(0) != rows || dst.size(1) != cols) {
            throw new IllegalArgumentException(name + ": " + what + " must be [" + rows + ", " + cols + "], got "
                    + Arrays.toString(dst.shape()));
        }
        if (dst.dataType() != dtype || dst.ordering() != 'f' || dst.isView() || dst.offset() != 0) {
            throw new IllegalArgumentException(name + ": " + what + " must be a " + dtype
                    + " 'f'-order array that is not a view (gemm writes into it), got " + dst.dataType()
                    + " '" + dst.ordering() + "'" + (dst.isView() ? " view" : ""));
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Initialisation

    /** torch.nn.init.kaiming_uniform_(w, a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = cols. */
    private INDArray kaimingUniform(SplittableRandom rng, long rows, long cols) {
        double bound = 1.0 / Math.sqrt(cols);
        double[] v = new double[Math.toIntExact(rows * cols)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (2 * rng.nextDouble() - 1) * bound;
        }
        return Nd4j.create(v, new long[]{rows, cols}, DataType.DOUBLE).castTo(dtype);
    }

    private INDArray gaussian(SplittableRandom rng, long rows, long cols, double std) {
        java.util.Random g = new java.util.Random(rng.nextLong());
        double[] v = new double[Math.toIntExact(rows * cols)];
        for (int i = 0; i < v.length; i++) {
            v[i] = g.nextGaussian() * std;
        }
        return Nd4j.create(v, new long[]{rows, cols}, DataType.DOUBLE).castTo(dtype);
    }

    /**
     * PiSSA (Meng et al. 2024, PEFT's {@code init_lora_weights="pissa"}): with W = U S Vᵀ and
     * S_r the top singular values divided by scaling, A = sqrt(S_r) V_rᵀ and B = U_r sqrt(S_r), and
     * W becomes W - scaling · B A, so the layer's output is unchanged at step 0.
     */
    private INDArray[] pissa(LoraConfig config) {
        int r = config.rank();
        if (r > Math.min(in, out)) {
            throw new IllegalArgumentException(name + ": PiSSA rank " + r + " exceeds min(out, in) = " + Math.min(in, out));
        }
        // The thin SVD (LAPACK's jobu = jobvt = 'S'). ND4J's lapack().gesvd asks for the full U
        // [out, out], which for a tall weight overruns a thin U buffer: that corrupted the native heap.
        int m = (int) out;
        int nCols = (int) in;
        int k = Math.min(m, nCols);
        double[] aCols = weight.castTo(DataType.DOUBLE).dup('f').data().asDouble();   // column-major [out, in]
        double[] sv = new double[k];
        double[] uCols = new double[m * k];          // column-major [out, k]
        double[] vtCols = new double[k * nCols];     // column-major [k, in]
        double[] superb = new double[Math.max(1, k - 1)];
        int info = openblas.LAPACKE_dgesvd(openblas.LAPACK_COL_MAJOR, (byte) 'S', (byte) 'S', m, nCols, aCols, m,
                sv, uCols, m, vtCols, k, superb);
        if (info != 0) {
            throw new IllegalStateException(name + ": SVD for PiSSA failed (LAPACK info " + info + ")");
        }
        double scaling = config.scaling();
        double[] aData = new double[r * nCols];      // row-major [r, in]
        double[] bData = new double[m * r];          // row-major [out, r]
        for (int i = 0; i < r; i++) {
            double root = Math.sqrt(sv[i] / scaling);
            for (int j = 0; j < nCols; j++) {
                aData[i * nCols + j] = root * vtCols[i + j * k];
            }
            for (int o = 0; o < m; o++) {
                bData[o * r + i] = uCols[o + i * m] * root;
            }
        }
        INDArray a = Nd4j.create(aData, new long[]{r, nCols}, DataType.DOUBLE);
        INDArray b = Nd4j.create(bData, new long[]{m, r}, DataType.DOUBLE);
        INDArray residual = weight.castTo(DataType.DOUBLE).dup('f');
        Nd4j.gemm(b, a, residual, false, false, -scaling, 1.0);        // W - scaling · B A
        weight.assign(residual.castTo(dtype));
        return new INDArray[]{a.castTo(dtype), b.castTo(dtype)};
    }

    // ---------------------------------------------------------------------------------------------
    // Accessors

    public String name() {
        return name;
    }

    public long inFeatures() {
        return in;
    }

    public long outFeatures() {
        return out;
    }

    public DataType dataType() {
        return dtype;
    }

    /**
     * The base weight [out, in], a view into the layer's packed buffer: mutate it in place (an
     * optimizer step, a load). The reference stays valid until an adapter of a larger rank than any
     * before is added, which repacks the buffer.
     */
    public INDArray weight() {
        return weight;
    }

    /** The bias [out] (a view, like {@link #weight()}), or null. */
    public INDArray bias() {
        return bias;
    }

    /** Accumulated gradient of W [out, in]; null unless weights are trainable. */
    public INDArray weightGrad() {
        return gradWcat == null ? null : gradWcat.get(NDArrayIndex.all(), NDArrayIndex.interval(0, in));
    }

    /** Accumulated gradient of the bias [out]; null unless weights are trainable and there is a bias. */
    public INDArray biasGrad() {
        return gradWcat == null || !hasBias ? null : gradWcat.get(NDArrayIndex.all(), NDArrayIndex.point(in));
    }

    /** Zeroes every gradient this layer holds (W, bias and every adapter's). */
    public void zeroGrad() {
        if (gradWcat != null) {
            gradWcat.assign(0);
        }
        for (LoraAdapter a : adapters.values()) {
            a.zeroGrad();
        }
    }

    @Override
    public String toString() {
        return "LoraLinear[" + name + ", in=" + in + ", out=" + out + ", bias=" + hasBias
                + ", adapters=" + adapters.keySet() + ", active=" + active + ", merged=" + isMerged() + "]";
    }
}

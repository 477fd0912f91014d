package org.lora4j.train.model;

import org.lora4j.core.internal.Threads;
import org.lora4j.train.optim.Parameter;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.function.ToIntFunction;

/**
 * A Llama/Qwen2-style decoder-only transformer over ND4J: token embedding, per block RMSNorm →
 * grouped-query causal self-attention with rotary embeddings → residual, RMSNorm → SwiGLU MLP →
 * residual, then a final RMSNorm and lm_head (or the tied embedding).
 *
 * <p>Every linear layer is a {@link LoraLinear} named by its Hugging Face module path
 * ({@code model.layers.2.mlp.down_proj}), so PEFT's {@code target_modules}/{@code layers_to_transform}
 * select the same layers here, and parameters are addressed by their Hugging Face names
 * ({@code model.layers.2.mlp.down_proj.weight}).
 *
 * <h2>Passes</h2>
 * {@link #forward} computes logits for {@code batch} sequences of {@code seq} tokens laid out row
 * by row ({@code tokens[b·seq + t]}); {@link #loss} adds the next-token cross-entropy; {@link #backward}
 * then accumulates the gradients of whatever is trainable (adapters, and all weights after
 * {@link #setFullFinetune}(true)). Call backward at most once per loss, and before any other
 * forward or generation: the layers keep only their most recent activations.
 *
 * <p>Matrix products run as ND4J gemm inside the linear layers, and attention's per-head products
 * as BLAS gemm on tiles of the same native buffers ({@link Attention}); norms, RoPE, the attention
 * softmax, SwiGLU and cross-entropy run as fused Java loops in double precision ({@link Kernels}),
 * over copies of the activations (SwiGLU and the softmax chunk by chunk). Attention, SwiGLU and
 * the norms run in parallel on the common fork-join pool, split in ways that do not depend on the
 * core count, so neither do the results. Buffers are allocated once per (batch, seq).
 *
 * <p>Not thread-safe.
 */
public final class DecoderModel {
    private static final Logger LOG = LoggerFactory.getLogger(DecoderModel.class);

    private final ModelConfig config;
    private final DataType dtype;
    private final int d;
    private final int hq;
    private final int hkv;
    private final int hd;
    private final int ff;
    private final int vocab;
    private final Attention attention;

    private final INDArray embedOwn;        // [V, d] 'f', or null when tied (then lm_head's weight)
    private INDArray embedGradOwn;          // [V, d] 'f' in full fine-tuning, untied only
    private final Layer[] layers;
    private final INDArray finalNorm;       // [d]
    private INDArray finalNormGrad;         // [d] in full fine-tuning
    private final LoraLinear lmHead;
    private final Map<String, LoraLinear> linears = new LinkedHashMap<>();
    private final List<List<ResidualHook>> hooks = new ArrayList<>();

    private final double[] invFreq;         // [hd/2]
    private double[] cos = new double[0];   // [position·hd/2 + f]
    private double[] sin = new double[0];
    private int ropePositions;

    private boolean fullFinetune;
    private Buffers buf;
    private boolean backwardReady;

    private static final class Layer {
        final int index;
        final LoraLinear q;
        final LoraLinear k;
        final LoraLinear v;
        final LoraLinear o;
        final LoraLinear gate;
        final LoraLinear up;
        final LoraLinear down;
        final INDArray inNorm;          // [d] input_layernorm
        final INDArray postNorm;        // [d] post_attention_layernorm
        INDArray inNormGrad;
        INDArray postNormGrad;
        // Saved by forward for backward, column-major [n, width] as in Kernels.
        double[] hIn;                   // [n, d] the block's input
        double[] rstd1;                 // [n]
        INDArray qa;                    // [n, hq·hd] 'f' after RoPE (native: attention's gemm reads it)
        INDArray ka;                    // [n, hkv·hd] 'f' after RoPE
        INDArray va;                    // [n, hkv·hd] 'f'
        double[] lse;                   // [hq, n] log-sum-exp of each query's scores
        double[] hMid;                  // [n, d] after the attention residual
        double[] rstd2;                 // [n]
        INDArray g;                     // [n, ff] 'f' gate_proj output
        INDArray u;                     // [n, ff] 'f' up_proj output

        Layer(int index, LoraLinear q, LoraLinear k, LoraLinear v, LoraLinear o, LoraLinear gate, LoraLinear up,
              LoraLinear down, INDArray inNorm, INDArray postNorm) {
            this.index = index;
            this.q = q;
            this.k = k;
            this.v = v;
            this.o = o;
            this.gate = gate;
            this.up = up;
            this.down = down;
            this.inNorm = inNorm;
            this.postNorm = postNorm;
        }

        List<LoraLinear> linears() {
            return List.of(q, k, v, o, gate, up, down);
        }
    }

    /** Per-(batch, seq) buffers: native ones for the gemm outputs, Java ones for the fused loops. */
    private final class Buffers {
        final int batch;
        final int seq;
        final int n;
        final INDArray qOut;    // [n, hq·hd] 'f'
        final INDArray kOut;    // [n, hkv·hd]
        final INDArray vOut;
        final INDArray dOut;    // [n, d] o_proj / down_proj output, then their output gradient
        final INDArray gOut;    // [n, ff]
        final INDArray uOut;
        final INDArray logits;  // [n, V]
        final INDArray dX;      // [n, d] input gradient of lm_head, gate+up, q+k+v
        final INDArray dFf;     // [n, ff] input gradient of down_proj
        final INDArray dq;      // [n, hq·hd] gradient of the roped queries
        Scratch[] scratch;      // per work slot of the element-wise loops
        final INDArray hook;    // [n, d] the hidden state handed to hooks
        INDArray dLogits;       // [n, V], made by the first loss
        double[] ceLogits;      // [n, V] the loss's copies, made with dLogits
        double[] ceDLogits;
        double[] ceRowMax;      // [n]
        final double[] h;       // [n, d] the residual stream
        final double[] dh;
        final double[] tmpD;    // [n, d]
        final double[] tmpD2;
        final double[] tmpQ;    // [n, hq·hd]
        final double[] tmpK;    // [n, hkv·hd]
        final double[] rows;    // [n]
        final double[] hFinal;  // [n, d] input of the final norm
        final double[] rstdF;   // [n]
        int[] tokens;
        boolean[] mask;

        Buffers(int batch, int seq) {
            this.batch = batch;
            this.seq = seq;
            this.n = batch * seq;
            qOut = nat(n, hq * hd);
            kOut = nat(n, hkv * hd);
            vOut = nat(n, hkv * hd);
            dOut = nat(n, d);
            gOut = nat(n, ff);
            uOut = nat(n, ff);
            logits = nat(n, vocab);
            dX = nat(n, d);
            dFf = nat(n, ff);
            dq = nat(n, hq * hd);
            hook = nat(n, d);
            h = new double[n * d];
            dh = new double[n * d];
            tmpD = new double[n * d];
            tmpD2 = new double[n * d];
            tmpQ = new double[n * hq * hd];
            tmpK = new double[n * hkv * hd];
            rows = new double[n];
            hFinal = new double[n * d];
            rstdF = new double[n];
            for (Layer l : layers) {
                l.hIn = new double[n * d];
                l.rstd1 = new double[n];
                l.qa = nat(n, hq * hd);
                l.ka = nat(n, hkv * hd);
                l.va = nat(n, hkv * hd);
                l.lse = new double[hq * n];
                l.hMid = new double[n * d];
                l.rstd2 = new double[n];
                l.g = nat(n, ff);
                l.u = nat(n, ff);
            }
        }

        private INDArray nat(int rows, int cols) {
            return Nd4j.create(dtype, new long[]{rows, cols}, 'f');
        }
    }

    /** Supplies a weight by Hugging Face name and expected shape. */
    private interface WeightSource {
        INDArray get(String key, long[] shape) throws IOException;
    }

    private DecoderModel(ModelConfig config, DataType dtype, WeightSource src) throws IOException {
        this.config = config;
        this.dtype = dtype;
        this.d = config.hiddenSize();
        this.hq = config.numHeads();
        this.hkv = config.numKvHeads();
        this.hd = config.headDim();
        this.ff = config.intermediateSize();
        this.vocab = config.vocabSize();
        this.attention = new Attention(hq, hkv, hd, dtype);
        INDArray embedding = src.get("model.embed_tokens.weight", new long[]{vocab, d});
        this.layers = new Layer[config.numLayers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "model.layers." + i + ".";
            int qd = config.qDim();
            int kvd = config.kvDim();
            boolean ab = config.attentionBias();
            boolean ob = config.outputBias();
            boolean mb = config.mlpBias();
            layers[i] = new Layer(i,
                    linear(src, p + "self_attn.q_proj", qd, d, ab),
                    linear(src, p + "self_attn.k_proj", kvd, d, ab),
                    linear(src, p + "self_attn.v_proj", kvd, d, ab),
                    linear(src, p + "self_attn.o_proj", d, qd, ob),
                    linear(src, p + "mlp.gate_proj", ff, d, mb),
                    linear(src, p + "mlp.up_proj", ff, d, mb),
                    linear(src, p + "mlp.down_proj", d, ff, mb),
                    vector(src, p + "input_layernorm.weight", d),
                    vector(src, p + "post_attention_layernorm.weight", d));
            hooks.add(new ArrayList<>());
        }
        this.finalNorm = vector(src, "model.norm.weight", d);
        if (config.tieWordEmbeddings()) {
            this.lmHead = new LoraLinear("lm_head", embedding, null);
            this.embedOwn = null;
        } else {
            this.lmHead = new LoraLinear("lm_head", src.get("lm_head.weight", new long[]{vocab, d}).castTo(dtype), null);
            this.embedOwn = embedding.castTo(dtype).dup('f');
        }
        linears.put("lm_head", lmHead);
        this.invFreq = inverseFrequencies(config);
    }

    private LoraLinear linear(WeightSource src, String path, int out, int in, boolean bias) throws IOException {
        INDArray w = src.get(path + ".weight", new long[]{out, in}).castTo(dtype);
        INDArray b = bias ? src.get(path + ".bias", new long[]{out}).castTo(dtype) : null;
        LoraLinear l = new LoraLinear(path, w, b);
        linears.put(path, l);
        return l;
    }

    private INDArray vector(WeightSource src, String key, int len) throws IOException {
        return src.get(key, new long[]{len}).castTo(dtype).dup();
    }

    // ---------------------------------------------------------------------------------------------
    // Construction, loading, saving

    /** A FLOAT model with Hugging Face's initialisation: N(0, 0.02) weights, zero biases, unit norms. */
    public static DecoderModel randomInit(ModelConfig config, long seed) {
        return randomInit(config, seed, DataType.FLOAT);
    }

    /** As {@link #randomInit(ModelConfig, long)} in FLOAT or DOUBLE (the latter for gradient checks). */
    public static DecoderModel randomInit(ModelConfig config, long seed, DataType dtype) {
        checkType(dtype);
        SplittableRandom root = new SplittableRandom(seed);
        try {
            return new DecoderModel(config, dtype, (key, shape) -> {
                if (key.endsWith(".bias")) {
                    return Nd4j.zeros(dtype, shape);
                }
                if (key.endsWith("norm.weight")) {
                    return Nd4j.ones(dtype, shape);
                }
                java.util.Random g = new java.util.Random(root.split().nextLong());
                double[] v = new double[Math.toIntExact(shape[0] * shape[1])];
                for (int i = 0; i < v.length; i++) {
                    v[i] = g.nextGaussian() * 0.02;
                }
                return Nd4j.create(v, shape, DataType.DOUBLE).castTo(dtype);
            });
        } catch (IOException e) {
            throw new IllegalStateException(e);  // the random source does no IO
        }
    }

    /** Loads a Hugging Face checkpoint directory (config.json and safetensors weights) as FLOAT. */
    public static DecoderModel load(Path dir) throws IOException {
        return load(dir, DataType.FLOAT);
    }

    /**
     * Loads {@code config.json} and {@code model.safetensors} (or the shards listed in
     * {@code model.safetensors.index.json}); F32, F16 and BF16 weights are widened to {@code dtype}.
     * Keys the model does not use (e.g. {@code rotary_emb.inv_freq}) are ignored.
     */
    public static DecoderModel load(Path dir, DataType dtype) throws IOException {
        checkType(dtype);
        ModelConfig config = ModelConfig.fromModelDirectory(dir);
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            return new DecoderModel(config, dtype, (key, shape) -> ckpt.get(key, shape, dtype));
        }
    }

    private static void checkType(DataType dtype) {
        if (dtype != DataType.FLOAT && dtype != DataType.DOUBLE) {
            throw new IllegalArgumentException("model data type must be FLOAT or DOUBLE, got " + dtype);
        }
    }

    /**
     * Writes {@code config.json} and {@code model.safetensors} in Hugging Face's layout, so
     * {@code AutoModelForCausalLM.from_pretrained(dir)} loads it. Adapters are not written (a merged
     * adapter is part of the weights).
     */
    public void save(Path dir) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), config.toHfJson(), StandardCharsets.UTF_8);
        Checkpoint.write(dir, parameters());
    }

    // ---------------------------------------------------------------------------------------------
    // Accessors

    public ModelConfig config() {
        return config;
    }

    public DataType dataType() {
        return dtype;
    }

    /** Every linear layer by module path, in model order, ending with {@code lm_head}. */
    public Map<String, LoraLinear> linearLayers() {
        return Collections.unmodifiableMap(linears);
    }

    /**
     * Every base weight by Hugging Face name, as in-place-mutable views (tied models list only
     * {@code model.embed_tokens.weight}). Adding an adapter of a larger rank than before to a layer
     * repacks its weight, so fetch the map again after attaching adapters.
     */
    public Map<String, INDArray> parameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put("model.embed_tokens.weight", embedding());
        for (Layer l : layers) {
            String p = "model.layers." + l.index + ".";
            m.put(p + "input_layernorm.weight", l.inNorm);
            putLinear(m, l.q);
            putLinear(m, l.k);
            putLinear(m, l.v);
            putLinear(m, l.o);
            m.put(p + "post_attention_layernorm.weight", l.postNorm);
            putLinear(m, l.gate);
            putLinear(m, l.up);
            putLinear(m, l.down);
        }
        m.put("model.norm.weight", finalNorm);
        if (!config.tieWordEmbeddings()) {
            m.put("lm_head.weight", lmHead.weight());
        }
        return m;
    }

    private static void putLinear(Map<String, INDArray> m, LoraLinear l) {
        m.put(l.name() + ".weight", l.weight());
        if (l.bias() != null) {
            m.put(l.name() + ".bias", l.bias());
        }
    }

    /**
     * The tensors an optimizer updates, with their gradients: all base weights after
     * {@link #setFullFinetune}(true), plus the active adapter's {@code lora_A}/{@code lora_B} of
     * every layer that has one (named as PEFT names them in memory:
     * {@code model.layers.2.mlp.down_proj.lora_A.<adapter>.weight}).
     */
    public List<Parameter> trainableParameters() {
        List<Parameter> out = new ArrayList<>();
        if (fullFinetune) {
            out.add(new Parameter("model.embed_tokens.weight", embedding(), embeddingGrad()));
            for (Layer l : layers) {
                String p = "model.layers." + l.index + ".";
                out.add(new Parameter(p + "input_layernorm.weight", l.inNorm, l.inNormGrad));
                for (LoraLinear lin : l.linears().subList(0, 4)) {
                    addLinear(out, lin);
                }
                out.add(new Parameter(p + "post_attention_layernorm.weight", l.postNorm, l.postNormGrad));
                for (LoraLinear lin : l.linears().subList(4, 7)) {
                    addLinear(out, lin);
                }
            }
            out.add(new Parameter("model.norm.weight", finalNorm, finalNormGrad));
            if (!config.tieWordEmbeddings()) {
                out.add(new Parameter("lm_head.weight", lmHead.weight(), lmHead.weightGrad()));
            }
        }
        for (LoraLinear lin : linears.values()) {
            LoraAdapter a = lin.activeAdapter();
            if (a != null && lin.adaptersEnabled() && !lin.isMerged()) {
                out.add(new Parameter(lin.name() + ".lora_A." + a.name() + ".weight", a.a(), a.gradA()));
                out.add(new Parameter(lin.name() + ".lora_B." + a.name() + ".weight", a.b(), a.gradB()));
            }
        }
        return out;
    }

    private static void addLinear(List<Parameter> out, LoraLinear lin) {
        out.add(new Parameter(lin.name() + ".weight", lin.weight(), lin.weightGrad()));
        if (lin.bias() != null) {
            out.add(new Parameter(lin.name() + ".bias", lin.bias(), lin.biasGrad()));
        }
    }

    /** [V, d]: the embedding table (lm_head's weight when tied). */
    private INDArray embedding() {
        return embedOwn != null ? embedOwn : lmHead.weight();
    }

    private INDArray embeddingGrad() {
        return embedOwn != null ? embedGradOwn : lmHead.weightGrad();
    }

    // ---------------------------------------------------------------------------------------------
    // Training switches

    /**
     * Trains every base weight (embedding, norms, linear weights and biases) or freezes them again;
     * frozen weights hold no gradient memory.
     */
    public void setFullFinetune(boolean full) {
        this.fullFinetune = full;
        for (LoraLinear l : linears.values()) {
            l.setWeightsTrainable(full);
        }
        for (Layer l : layers) {
            l.inNormGrad = full ? Nd4j.zeros(dtype, d) : null;
            l.postNormGrad = full ? Nd4j.zeros(dtype, d) : null;
        }
        finalNormGrad = full ? Nd4j.zeros(dtype, d) : null;
        embedGradOwn = full && embedOwn != null ? Nd4j.create(dtype, new long[]{vocab, d}, 'f') : null;
    }

    public boolean isFullFinetune() {
        return fullFinetune;
    }

    /** Training mode turns on adapter dropout; evaluation mode turns it off. */
    public void setTraining(boolean training) {
        for (LoraLinear l : linears.values()) {
            l.setTraining(training);
        }
    }

    /**
     * Adds an adapter named {@code adapterName} to every linear layer {@code config.matches} (PEFT's
     * target_modules / layers_to_transform rule), each with its own seed split from {@code seed}.
     *
     * @return the module paths adapted, in model order
     * @throws IllegalArgumentException when no layer matches
     */
    public List<String> attachAdapters(String adapterName, LoraConfig loraConfig, long seed) {
        SplittableRandom root = new SplittableRandom(seed);
        List<String> adapted = new ArrayList<>();
        for (LoraLinear l : linears.values()) {
            long layerSeed = root.split().nextLong();  // split for every layer, so seeds do not depend on the targets
            if (loraConfig.matches(l.name())) {
                l.addAdapter(adapterName, loraConfig, layerSeed);
                adapted.add(l.name());
            }
        }
        if (adapted.isEmpty()) {
            throw new IllegalArgumentException("target_modules " + loraConfig.targetModules()
                    + (loraConfig.layersToTransform().isEmpty() ? "" : " with layers_to_transform " + loraConfig.layersToTransform())
                    + " match no layer; module names end in q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head"
                    + " and layers are 0.." + (layers.length - 1));
        }
        return adapted;
    }

    /** Zeroes every gradient: base weights (when trainable) and all adapters. */
    public void zeroGrad() {
        for (LoraLinear l : linears.values()) {
            l.zeroGrad();
        }
        for (Layer l : layers) {
            if (l.inNormGrad != null) {
                l.inNormGrad.assign(0);
                l.postNormGrad.assign(0);
            }
        }
        if (finalNormGrad != null) {
            finalNormGrad.assign(0);
        }
        if (embedGradOwn != null) {
            embedGradOwn.assign(0);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Hooks

    /** Adds a hook after block {@code layer} (0-based); hooks of one layer run in the order added. */
    public void addResidualHook(int layer, ResidualHook hook) {
        checkLayer(layer);
        hooks.get(layer).add(Objects.requireNonNull(hook, "hook"));
    }

    public boolean removeResidualHook(int layer, ResidualHook hook) {
        checkLayer(layer);
        return hooks.get(layer).remove(hook);
    }

    public void clearResidualHooks() {
        hooks.forEach(List::clear);
    }

    private void checkLayer(int layer) {
        if (layer < 0 || layer >= layers.length) {
            throw new IllegalArgumentException("layer must be in [0, " + layers.length + "), got " + layer);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Forward

    /** {@link #forward(int[], boolean[], int, int)} with no token mask (hooks see all tokens). */
    public INDArray forward(int[] tokens, int batch, int seq) {
        return forward(tokens, null, batch, seq);
    }

    /**
     * Logits for every position.
     *
     * @param tokens    [batch·seq] token ids, sequence after sequence
     * @param tokenMask [batch·seq] or null (all true): handed to the residual hooks
     * @return [batch·seq, vocab] 'f'; owned by the model and overwritten by the next pass
     */
    public INDArray forward(int[] tokens, boolean[] tokenMask, int batch, int seq) {
        checkInput(tokens, tokenMask, batch, seq);
        Buffers b = buffers(batch, seq);
        b.tokens = tokens.clone();
        b.mask = tokenMask == null ? null : tokenMask.clone();
        ensureRope(seq);
        backwardReady = false;
        embed(tokens, b.n, b.h);
        for (Layer l : layers) {
            layerForward(l, b, 0, null);
        }
        System.arraycopy(b.h, 0, b.hFinal, 0, b.n * d);
        rmsNormForward(b.h, host(finalNorm), b.n, b.tmpD, b.rstdF);
        INDArray x = lmHead.inputBuffer(b.n);
        Host.write(b.tmpD, x, b.n * d);
        lmHead.forward(x, b.logits);
        return b.logits;
    }

    /**
     * Forward plus the next-token cross-entropy: the mean over every position t < seq − 1 whose
     * target token {@code t + 1} has {@code lossMask[b·seq + t + 1]} true (null: all), as Hugging Face's
     * {@code labels} with −100 at the masked tokens. Prepares {@link #backward}.
     */
    public double loss(int[] tokens, boolean[] lossMask, int batch, int seq) {
        forward(tokens, lossMask, batch, seq);
        Buffers b = buf;
        if (b.dLogits == null) {
            b.dLogits = Nd4j.create(dtype, new long[]{b.n, vocab}, 'f');
            b.ceLogits = new double[b.n * vocab];
            b.ceDLogits = new double[b.n * vocab];
            b.ceRowMax = new double[b.n];
        }
        double[] logits = b.ceLogits;
        Host.read(b.logits, logits, logits.length);
        double[] dLogits = b.ceDLogits;
        double[] rowMax = b.ceRowMax;
        double[] sc = Kernels.crossEntropy(logits, tokens, lossMask, batch, seq, vocab, dLogits, rowMax, b.rows);
        if (sc[1] == 0) {
            throw new IllegalArgumentException("the loss mask selects no target token (a target needs a token before it)");
        }
        Host.write(dLogits, b.dLogits, dLogits.length);
        backwardReady = true;
        return sc[0] / sc[1];
    }

    /** {@link #loss} then {@link #backward}: the loss, with gradients accumulated. */
    public double lossAndBackward(int[] tokens, boolean[] lossMask, int batch, int seq) {
        double l = loss(tokens, lossMask, batch, seq);
        backward();
        return l;
    }

    /** The token ids of one forward must lie in the vocabulary; masks match their length. */
    private void checkInput(int[] tokens, boolean[] mask, int batch, int seq) {
        Objects.requireNonNull(tokens, "tokens");
        if (batch < 1 || seq < 1) {
            throw new IllegalArgumentException("batch and seq must be >= 1, got batch " + batch + ", seq " + seq);
        }
        if (tokens.length != (long) batch * seq) {
            throw new IllegalArgumentException("tokens has " + tokens.length + " ids, expected batch " + batch
                    + " x seq " + seq + " = " + (long) batch * seq);
        }
        if (mask != null && mask.length != tokens.length) {
            throw new IllegalArgumentException("mask has " + mask.length + " flags for " + tokens.length + " tokens");
        }
        if (seq > config.maxPositionEmbeddings()) {
            throw new IllegalArgumentException("seq " + seq + " exceeds max_position_embeddings "
                    + config.maxPositionEmbeddings());
        }
        checkIds(tokens);
    }

    private void checkIds(int[] tokens) {
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocab) {
                throw new IllegalArgumentException("token id " + tokens[i] + " at position " + i
                        + " is outside the vocabulary [0, " + vocab + ")");
            }
        }
    }

    private Buffers buffers(int batch, int seq) {
        if (buf == null || buf.batch != batch || buf.seq != seq) {
            buf = null;  // let the old buffers go before allocating the new ones
            buf = new Buffers(batch, seq);
        }
        return buf;
    }

    private void embed(int[] tokens, int n, double[] h) {
        Host.Access e = Host.access(embedding());  // [V, d] 'f': (v, c) at v + c·V
        for (int c = 0; c < d; c++) {
            long col = (long) c * vocab;
            int o = c * n;
            for (int r = 0; r < n; r++) {
                h[o + r] = e.get(col + tokens[r]);
            }
        }
    }

    private static double[] host(INDArray v) {
        double[] out = new double[(int) v.length()];
        Host.read(v, out, out.length);
        return out;
    }

    /** KV cache of one layer for generation, [cap, hkv·hd] 'f': (position j, feature g·hd + c) at (g·hd + c)·cap + j. */
    private record Cache(INDArray k, INDArray v, int cap) {
    }

    /**
     * One block on b.h in place, for b.batch sequences of b.seq new tokens at positions past...
     * With a cache (batch 1), the new keys and values are appended to it and attention reads it.
     */
    private void layerForward(Layer l, Buffers b, int past, Cache cache) {
        int n = b.n;
        int seq = b.seq;
        System.arraycopy(b.h, 0, l.hIn, 0, n * d);
        rmsNormForward(b.h, host(l.inNorm), n, b.tmpD, l.rstd1);
        INDArray x = l.q.inputBuffer(n);
        Host.write(b.tmpD, x, n * d);
        l.q.forward(x, l.qa);
        l.k.forward(x, l.ka);
        l.v.forward(x, l.va);
        Host.read(l.qa, b.tmpQ, n * hq * hd);
        Kernels.rope(b.tmpQ, n, seq, hq, hd, past, cos, sin, 1.0);
        Host.write(b.tmpQ, l.qa, n * hq * hd);
        Host.read(l.ka, b.tmpK, n * hkv * hd);
        Kernels.rope(b.tmpK, n, seq, hkv, hd, past, cos, sin, 1.0);
        Host.write(b.tmpK, l.ka, n * hkv * hd);
        INDArray keys = l.ka;
        INDArray values = l.va;
        int kvLd = n;
        if (cache != null) {
            for (int col = 0; col < hkv * hd; col++) {
                Host.copy(l.ka, (long) col * n, cache.k, (long) col * cache.cap + past, n);
                Host.copy(l.va, (long) col * n, cache.v, (long) col * cache.cap + past, n);
            }
            keys = cache.k;
            values = cache.v;
            kvLd = cache.cap;
        }
        INDArray xo = l.o.inputBuffer(n);  // [n, hq·hd]: attention writes o_proj's input in place
        attention.forward(b.batch, seq, past, l.qa, keys, values, kvLd, cache == null ? seq : 0, xo, l.lse);
        l.o.forward(xo, b.dOut);
        Host.read(b.dOut, b.tmpD, n * d);
        addInto(b.h, b.tmpD, n * d);
        System.arraycopy(b.h, 0, l.hMid, 0, n * d);
        rmsNormForward(b.h, host(l.postNorm), n, b.tmpD, l.rstd2);
        INDArray xm = l.gate.inputBuffer(n);
        Host.write(b.tmpD, xm, n * d);
        l.gate.forward(xm, l.g);
        l.up.forward(xm, l.u);
        INDArray xd = l.down.inputBuffer(n);
        swigluForward(b, l, xd, n * ff);
        l.down.forward(xd, b.dOut);
        Host.read(b.dOut, b.tmpD, n * d);
        addInto(b.h, b.tmpD, n * d);
        List<ResidualHook> hs = hooks.get(l.index);
        if (!hs.isEmpty()) {
            Host.write(b.h, b.hook, n * d);
            boolean[] mask = b.mask != null ? b.mask : allTrue(n);
            for (ResidualHook hook : hs) {
                hook.forward(l.index, b.hook, mask);
            }
            readBackChanged(b.hook, b.h, b.tmpD, n * d);
        }
    }

    /**
     * x = the hooks' result, except where a hook left an element as it was handed over: the
     * stream is kept in double and the hook sees it rounded to the model's type, so a plain read
     * back would round a FLOAT model's whole stream at every hook and a hook that only reads
     * ({@link ResidualHook.Capture}) would change the logits. tmp [len] is scratch.
     */
    private void readBackChanged(INDArray hook, double[] x, double[] tmp, int len) {
        Host.read(hook, tmp, len);
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

    private static boolean[] allTrue(int n) {
        boolean[] m = new boolean[n];
        Arrays.fill(m, true);
        return m;
    }

    private static void addInto(double[] acc, double[] x, int len) {
        for (int i = 0; i < len; i++) {
            acc[i] += x[i];
        }
    }

    /**
     * Rows per block of the parallel RMSNorm. Fixed, not derived from the core count, so the
     * weight gradient's partial sums (added block by block, in order) are the same on every machine.
     */
    private static final int NORM_ROWS = 256;

    /** Kernels.rmsNormForward in parallel over blocks of rows. */
    private void rmsNormForward(double[] x, double[] w, int n, double[] y, double[] rstd) {
        int blocks = (n + NORM_ROWS - 1) / NORM_ROWS;
        Threads.parallelFor(blocks, blk -> Kernels.rmsNormForward(x, w, config.rmsNormEps(), n, d,
                y, rstd, blk * NORM_ROWS, Math.min(n, (blk + 1) * NORM_ROWS)));
    }

    /** Kernels.rmsNormBackward in parallel over blocks of rows; dw (when not null) gets the blocks' sums in order. */
    private void rmsNormBackward(double[] x, double[] w, double[] rstd, double[] dy, int n, double[] dx, double[] dw,
                                 double[] scratch) {
        int blocks = (n + NORM_ROWS - 1) / NORM_ROWS;
        double[][] parts = dw == null ? null : new double[blocks][d];
        Threads.parallelFor(blocks, blk -> Kernels.rmsNormBackward(x, w, rstd, dy, n, d, dx,
                parts == null ? null : parts[blk], scratch, blk * NORM_ROWS, Math.min(n, (blk + 1) * NORM_ROWS)));
        if (dw != null) {
            for (double[] p : parts) {
                for (int c = 0; c < d; c++) {
                    dw[c] += p[c];
                }
            }
        }
    }

    /** Elements per chunk of the element-wise loops on native buffers: three double chunks stay in L2. */
    private static final int EW_CHUNK = 1 << 13;

    /** Runs span(scratch, from, to) over [0, len) in chunks, in parallel over contiguous ranges of chunks. */
    private void parallelChunks(Buffers b, int len, ChunkTask span) {
        int chunks = (len + EW_CHUNK - 1) / EW_CHUNK;
        int parts = Threads.slots(chunks);
        Scratch[] sc = scratch(b, parts);
        Threads.parallelFor(parts, part -> {
            Scratch s = sc[part];
            s.ensureChunk();
            for (int c = part * chunks / parts; c < (part + 1) * chunks / parts; c++) {
                span.run(s, c * EW_CHUNK, Math.min(len, (c + 1) * EW_CHUNK));
            }
        });
    }

    private interface ChunkTask {
        void run(Scratch s, int from, int to);
    }

    /** out = silu(l.g) ∘ l.u over len elements, chunk by chunk from and to the native buffers. */
    private void swigluForward(Buffers b, Layer l, INDArray outArr, int len) {
        Host.Mem g = new Host.Mem(l.g);
        Host.Mem u = new Host.Mem(l.u);
        Host.Mem out = new Host.Mem(outArr);
        parallelChunks(b, len, (s, from, to) -> {
            int m = to - from;
            g.read(from, s.c1, 0, m);
            u.read(from, s.c2, 0, m);
            Kernels.swigluForward(s.c1, s.c2, s.c3, 0, m, dtype == DataType.FLOAT);
            out.write(s.c3, 0, from, m);
        });
    }

    /** dg, du (native, overwritten) from da, the gradient of swiglu's output. */
    private void swigluBackward(Buffers b, Layer l, INDArray daArr, INDArray dgArr, INDArray duArr, int len) {
        Host.Mem g = new Host.Mem(l.g);
        Host.Mem u = new Host.Mem(l.u);
        Host.Mem da = new Host.Mem(daArr);
        Host.Mem dg = new Host.Mem(dgArr);
        Host.Mem du = new Host.Mem(duArr);
        parallelChunks(b, len, (s, from, to) -> {
            int m = to - from;
            g.read(from, s.c1, 0, m);
            u.read(from, s.c2, 0, m);
            da.read(from, s.c3, 0, m);
            Kernels.swigluBackward(s.c1, s.c2, s.c3, s.c4, s.c5, 0, m, dtype == DataType.FLOAT);
            dg.write(s.c4, 0, from, m);
            du.write(s.c5, 0, from, m);
        });
    }

    /** Per-slot scratch of the element-wise loops: EW_CHUNK doubles each. */
    private static final class Scratch {
        double[] c1;
        double[] c2;
        double[] c3;
        double[] c4;
        double[] c5;

        void ensureChunk() {
            if (c1 == null) {
                c1 = new double[EW_CHUNK];
                c2 = new double[EW_CHUNK];
                c3 = new double[EW_CHUNK];
                c4 = new double[EW_CHUNK];
                c5 = new double[EW_CHUNK];
            }
        }
    }

    private Scratch[] scratch(Buffers b, int count) {
        if (b.scratch == null || b.scratch.length < count) {
            Scratch[] s = new Scratch[count];
            for (int i = 0; i < count; i++) {
                s[i] = b.scratch != null && i < b.scratch.length ? b.scratch[i] : new Scratch();
            }
            b.scratch = s;
        }
        return b.scratch;
    }

    // ---------------------------------------------------------------------------------------------
    // Backward

    /**
     * Backward through the most recent {@link #loss}: accumulates the gradients of everything
     * trainable. Blocks below the lowest trainable part are skipped.
     */
    public void backward() {
        backward(1.0);
    }

    /**
     * As {@link #backward()} for the loss multiplied by {@code lossScale}: gradient accumulation over
     * micro-batches weights each one's mean loss by its share of the targets.
     */
    public void backward(double lossScale) {
        if (!Double.isFinite(lossScale)) {
            throw new IllegalArgumentException("lossScale must be finite, got " + lossScale);
        }
        if (!backwardReady) {
            throw new IllegalStateException("backward needs a loss(...) first (and at most one backward per loss)");
        }
        backwardReady = false;
        Buffers b = buf;
        int n = b.n;
        int lowest = lowestTrainableLayer();
        if (lossScale != 1.0) {
            b.dLogits.muli(lossScale);
        }
        lmHead.backward(b.dLogits, lowest < layers.length ? b.dX : null);
        if (lowest >= layers.length) {
            return;
        }
        Host.read(b.dX, b.tmpD, n * d);
        Arrays.fill(b.dh, 0, n * d, 0.0);
        double[] dw = finalNormGrad != null ? new double[d] : null;
        rmsNormBackward(b.hFinal, host(finalNorm), b.rstdF, b.tmpD, n, b.dh, dw, b.rows);
        if (dw != null) {
            Host.add(dw, finalNormGrad, d);
        }
        for (int li = layers.length - 1; li >= Math.max(lowest, 0); li--) {
            layerBackward(layers[li], b);
        }
        if (lowest < 0) {
            embedBackward(b);
        }
    }

    /** -1 when the embedding trains; numLayers when only lm_head does. */
    private int lowestTrainableLayer() {
        if (fullFinetune) {
            return -1;
        }
        for (Layer l : layers) {
            for (LoraLinear lin : l.linears()) {
                if (lin.activeAdapter() != null && lin.adaptersEnabled() && !lin.isMerged()) {
                    return l.index;
                }
            }
        }
        return layers.length;
    }

    private void layerBackward(Layer l, Buffers b) {
        int n = b.n;
        int seq = b.seq;
        List<ResidualHook> hs = hooks.get(l.index);
        if (!hs.isEmpty()) {
            Host.write(b.dh, b.hook, n * d);
            for (int i = hs.size() - 1; i >= 0; i--) {
                hs.get(i).backward(l.index, b.hook);
            }
            readBackChanged(b.hook, b.dh, b.tmpD, n * d);
        }
        // MLP: h_out = hMid + down(silu(gate(x)) ∘ up(x)), x = norm2(hMid)
        Host.write(b.dh, b.dOut, n * d);
        l.down.backward(b.dOut, b.dFf);
        swigluBackward(b, l, b.dFf, b.gOut, b.uOut, n * ff);
        l.gate.backward(b.gOut, b.dX);
        l.up.backwardAccumulate(b.uOut, b.dX);
        Host.read(b.dX, b.tmpD, n * d);
        double[] dw2 = l.postNormGrad != null ? new double[d] : null;
        rmsNormBackward(l.hMid, host(l.postNorm), l.rstd2, b.tmpD, n, b.dh, dw2, b.rows);
        // Attention: hMid = hIn + o(attn(rope(q(x)), rope(k(x)), v(x))), x = norm1(hIn)
        Host.write(b.dh, b.dOut, n * d);
        l.o.backward(b.dOut, b.qOut);  // [n, hq·hd] gradient of the attention output
        attention.backward(b.batch, seq, l.qa, l.ka, l.va, l.lse, b.qOut, b.dq, b.kOut, b.vOut);
        Host.read(b.dq, b.tmpQ, n * hq * hd);
        Kernels.rope(b.tmpQ, n, seq, hq, hd, 0, cos, sin, -1.0);
        Host.write(b.tmpQ, b.dq, n * hq * hd);
        Host.read(b.kOut, b.tmpK, n * hkv * hd);
        Kernels.rope(b.tmpK, n, seq, hkv, hd, 0, cos, sin, -1.0);
        Host.write(b.tmpK, b.kOut, n * hkv * hd);
        l.q.backward(b.dq, b.dX);
        l.k.backwardAccumulate(b.kOut, b.dX);
        l.v.backwardAccumulate(b.vOut, b.dX);
        Host.read(b.dX, b.tmpD, n * d);
        double[] dw1 = l.inNormGrad != null ? new double[d] : null;
        rmsNormBackward(l.hIn, host(l.inNorm), l.rstd1, b.tmpD, n, b.dh, dw1, b.rows);
        if (dw1 != null) {
            Host.add(dw1, l.inNormGrad, d);
            Host.add(dw2, l.postNormGrad, d);
        }
    }

    private void embedBackward(Buffers b) {
        Host.Access g = Host.access(embeddingGrad());  // [V, d] 'f'
        int n = b.n;
        for (int c = 0; c < d; c++) {
            long col = (long) c * vocab;
            int o = c * n;
            for (int r = 0; r < n; r++) {
                long at = col + b.tokens[r];
                g.put(at, g.get(at) + b.dh[o + r]);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Generation

    /** Picks the highest logit (the first on ties). */
    public static ToIntFunction<float[]> greedy() {
        return logits -> {
            int best = 0;
            for (int i = 1; i < logits.length; i++) {
                if (logits[i] > logits[best]) {
                    best = i;
                }
            }
            return best;
        };
    }

    /**
     * Continues one prompt. Residual hooks apply to the prompt and to every generated token.
     *
     * @param prompt        token ids, at least one
     * @param maxNewTokens  the length limit on the continuation
     * @param stopTokenIds  generation ends after one of these is produced (it is included in the result)
     * @param next          picks the next token from the last position's logits, e.g. {@link #greedy()}
     *                      or a sampler's {@code next}
     * @param useKvCache    keep keys and values of earlier positions (fast) or recompute the whole
     *                      sequence every step (the reference the cache is tested against)
     * @return the generated tokens, without the prompt
     */
    public int[] generate(int[] prompt, int maxNewTokens, int[] stopTokenIds, ToIntFunction<float[]> next,
                          boolean useKvCache) {
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(next, "next");
        if (prompt.length == 0) {
            throw new IllegalArgumentException("prompt must hold at least one token");
        }
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("maxNewTokens must be >= 0, got " + maxNewTokens);
        }
        checkIds(prompt);
        int total = prompt.length + maxNewTokens;
        if (total > config.maxPositionEmbeddings()) {
            throw new IllegalArgumentException("prompt (" + prompt.length + ") + maxNewTokens (" + maxNewTokens
                    + ") exceeds max_position_embeddings " + config.maxPositionEmbeddings());
        }
        int[] stops = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
        backwardReady = false;
        ensureRope(total);
        int[] seqSoFar = Arrays.copyOf(prompt, total);
        int len = prompt.length;
        List<Cache> caches = new ArrayList<>();
        if (useKvCache) {
            for (int i = 0; i < layers.length; i++) {
                caches.add(new Cache(Nd4j.create(dtype, new long[]{total, hkv * hd}, 'f'),
                        Nd4j.create(dtype, new long[]{total, hkv * hd}, 'f'), total));
            }
        }
        float[] logits = useKvCache ? forwardCached(prompt, 0, caches) : lastLogits(seqSoFar, len);
        int produced = 0;
        while (produced < maxNewTokens) {
            int t = next.applyAsInt(logits);
            if (t < 0 || t >= vocab) {
                throw new IllegalStateException("token picker returned " + t + ", outside [0, " + vocab + ")");
            }
            seqSoFar[len++] = t;
            produced++;
            if (contains(stops, t) || produced == maxNewTokens) {
                break;
            }
            logits = useKvCache ? forwardCached(new int[]{t}, len - 1, caches) : lastLogits(seqSoFar, len);
        }
        return Arrays.copyOfRange(seqSoFar, prompt.length, len);
    }

    private static boolean contains(int[] a, int x) {
        for (int v : a) {
            if (v == x) {
                return true;
            }
        }
        return false;
    }

    private float[] lastLogits(int[] tokens, int len) {
        INDArray logits = forward(Arrays.copyOf(tokens, len), 1, len);
        double[] all = new double[len * vocab];
        Host.read(logits, all, all.length);
        float[] out = new float[vocab];
        for (int v = 0; v < vocab; v++) {
            out[v] = (float) all[v * len + len - 1];
        }
        return out;
    }

    /** The new tokens through every block with the cache; logits of the last one. */
    private float[] forwardCached(int[] tokens, int past, List<Cache> caches) {
        int n = tokens.length;
        Buffers b = buffers(1, n);
        b.mask = null;
        embed(tokens, n, b.h);
        for (Layer l : layers) {
            layerForward(l, b, past, caches.get(l.index));
        }
        double[] last = new double[d];
        for (int c = 0; c < d; c++) {
            last[c] = b.h[c * n + n - 1];
        }
        double[] normed = new double[d];
        Kernels.rmsNormForward(last, host(finalNorm), config.rmsNormEps(), 1, d, normed, new double[1]);
        INDArray x = lmHead.inputBuffer(1);
        Host.write(normed, x, d);
        INDArray out = Nd4j.create(dtype, new long[]{1, vocab}, 'f');
        lmHead.forward(x, out);
        double[] l = new double[vocab];
        Host.read(out, l, vocab);
        float[] f = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            f[i] = (float) l[i];
        }
        return f;
    }

    // ---------------------------------------------------------------------------------------------
    // Rotary tables

    /** inv_freq as Hugging Face computes it, with the "linear" or "llama3" rope_scaling applied. */
    static double[] inverseFrequencies(ModelConfig c) {
        int half = c.headDim() / 2;
        double[] inv = new double[half];
        for (int f = 0; f < half; f++) {
            inv[f] = 1.0 / Math.pow(c.ropeTheta(), (2.0 * f) / c.headDim());
        }
        ModelConfig.RopeScaling s = c.ropeScaling();
        if (s == null) {
            return inv;
        }
        if (s.type().equals("linear")) {
            for (int f = 0; f < half; f++) {
                inv[f] /= s.factor();
            }
            return inv;
        }
        // llama3: transformers' _compute_llama3_parameters
        double old = s.originalMaxPositionEmbeddings();
        double lowWavelen = old / s.lowFreqFactor();
        double highWavelen = old / s.highFreqFactor();
        for (int f = 0; f < half; f++) {
            double wavelen = 2 * Math.PI / inv[f];
            if (wavelen > lowWavelen) {
                inv[f] = inv[f] / s.factor();
            } else if (wavelen >= highWavelen) {
                double smooth = (old / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                inv[f] = (1 - smooth) * inv[f] / s.factor() + smooth * inv[f];
            }
        }
        return inv;
    }

    private void ensureRope(int positions) {
        if (positions <= ropePositions) {
            return;
        }
        int half = hd / 2;
        double[] c = new double[positions * half];
        double[] s = new double[positions * half];
        for (int p = 0; p < positions; p++) {
            for (int f = 0; f < half; f++) {
                double angle = p * invFreq[f];
                c[p * half + f] = Math.cos(angle);
                s[p * half + f] = Math.sin(angle);
            }
        }
        cos = c;
        sin = s;
        ropePositions = positions;
    }

    @Override
    public String toString() {
        return "DecoderModel[" + config.architecture() + ", layers=" + layers.length + ", d=" + d + ", heads=" + hq
                + "/" + hkv + ", vocab=" + vocab + ", " + dtype + (fullFinetune ? ", full fine-tune" : "") + "]";
    }
}

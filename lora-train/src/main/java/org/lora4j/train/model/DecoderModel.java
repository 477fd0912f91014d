package org.lora4j.train.model;

import org.lora4j.core.AtomicFiles;
import org.lora4j.core.PeftKeys;
import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.train.optim.Parameter;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
 * {@link #setFullFinetune}(true)). The loss saves activations only from the lowest trainable block
 * up, and the backward stops at the lowest trainable part of that block: frozen layers below it
 * cost a forward only. Call backward at most once per loss, and before any other
 * forward or generation: the layers keep only their most recent activations.
 *
 * <h2>Parts</h2>
 * This class is a facade over one class per part, each a forward/backward pair that owns its
 * weights and what it saves for its backward: {@link Embedding}, {@link DecoderBlock} (RMSNorm →
 * {@link SelfAttention} → residual, RMSNorm → {@link SwiGluMlp} → residual) per layer, and
 * {@link LmHead} (final norm, lm_head, cross-entropy); {@link Rope} holds the rotary tables and
 * {@link Workspace} the scratch the blocks share. Generation with the KV cache, one sequence or
 * many at once, is {@link Generator}.
 *
 * <p>Matrix products run as BLAS gemm (cblas via lora-core) inside the linear layers, and
 * attention's per-head products as BLAS gemm on tiles of the same native buffers
 * ({@link Attention}); norms, RoPE, the attention softmax and SwiGLU run as fused Java loops in
 * double precision ({@link Kernels}), over copies of the activations (SwiGLU and the softmax chunk
 * by chunk); the cross-entropy turns the logits into their gradient in place ({@link LmHead}). Attention, SwiGLU and the norms run in parallel on the common fork-join
 * pool, split in ways that do not depend on the core count, so neither do the results. Buffers are
 * allocated once per (batch, seq).
 *
 * <p>Not thread-safe.
 */
public final class DecoderModel {
    private final ModelConfig config;
    private final DataType dtype;
    private final int d;
    private final int vocab;
    private final Embedding embedding;
    private final DecoderBlock[] blocks;
    private final LmHead head;
    private final Rope rope;
    private final Map<String, LoraLinear> linears;  // by module path, in model order, ending with lm_head
    private final ResidualHooks hooks;

    private String nameOrPath;      // Hugging Face's name_or_path: recorded as an adapter's base_model_name_or_path
    private boolean fullFinetune;
    private Workspace work;
    private boolean backwardReady;
    private int keptFrom;           // the lowest block whose activations the last loss saved for the backward

    private DecoderModel(ModelConfig config, DataType dtype, ModelParts.WeightSource src) throws IOException {
        ModelParts parts = new ModelParts(config, dtype, src);
        this.config = config;
        this.dtype = dtype;
        this.d = config.hiddenSize();
        this.vocab = config.vocabSize();
        this.rope = parts.rope;
        this.embedding = parts.embedding;
        this.blocks = parts.blocks;
        this.head = parts.head;
        this.linears = parts.linears;
        this.hooks = new ResidualHooks(blocks.length, d, dtype);
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
        try {
            return new DecoderModel(config, dtype, ModelParts.huggingFaceInit(seed, dtype));
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
        DecoderModel m;
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            m = new DecoderModel(config, dtype, (key, shape) -> ckpt.get(key, shape, dtype));
        }
        String declared = ModelConfig.nameOrPath(dir.resolve(ModelConfig.CONFIG_FILE));
        m.nameOrPath = declared != null ? declared : dir.toAbsolutePath().normalize().toString();
        return m;
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
        AtomicFiles.writeString(dir.resolve("config.json"), config.toHfJson());
        Checkpoint.write(dir, parameters());
    }

    // ---------------------------------------------------------------------------------------------
    // Accessors

    public ModelConfig config() {
        return config;
    }

    /**
     * Hugging Face's {@code name_or_path}: what a saved adapter records as
     * {@code base_model_name_or_path}, so PEFT and lora4j know which base to load it onto. After
     * {@link #load} it is config.json's {@code _name_or_path} when present (a hub id such as
     * {@code Qwen/Qwen2.5-0.5B-Instruct}), else the absolute path of the directory loaded; null for
     * a {@link #randomInit} model until set.
     */
    public String nameOrPath() {
        return nameOrPath;
    }

    /**
     * Overrides {@link #nameOrPath()} (the command line's {@code --base-model-name}): e.g. the hub id of
     * a model loaded from a local copy, so the adapter names the base others can download.
     */
    public void setNameOrPath(String nameOrPath) {
        if (nameOrPath != null && nameOrPath.isBlank()) {
            throw new IllegalArgumentException("name_or_path must not be blank; null means unknown");
        }
        this.nameOrPath = nameOrPath;
    }

    public DataType dataType() {
        return dtype;
    }

    /** Every linear layer by module path, in model order, ending with {@code lm_head}. */
    public Map<String, LoraLinear> linearLayers() {
        return linears;
    }

    /**
     * Every base weight by Hugging Face name, as in-place-mutable views (tied models list only
     * {@code model.embed_tokens.weight}). Adding an adapter of a larger rank than before to a layer
     * repacks its weight, so fetch the map again after attaching adapters.
     */
    public Map<String, INDArray> parameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put("model.embed_tokens.weight", embedding.table());
        for (DecoderBlock blk : blocks) {
            blk.putParameters(m);
        }
        m.put(head.norm.name(), head.norm.weight());
        if (!config.tieWordEmbeddings()) {
            m.put("lm_head.weight", head.linear.weight());
        }
        return m;
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
            out.add(new Parameter("model.embed_tokens.weight", embedding.table(), embedding.grad()));
            for (DecoderBlock blk : blocks) {
                blk.addWeightParameters(out);
            }
            out.add(head.norm.parameter());
            if (!config.tieWordEmbeddings()) {
                out.add(new Parameter("lm_head.weight", head.linear.weight(), head.linear.weightGrad()));
            }
        }
        for (LoraLinear lin : linears.values()) {
            LoraAdapter a = lin.activeAdapter();
            if (a != null && lin.adaptersEnabled() && !lin.isMerged()) {
                out.add(new Parameter(PeftKeys.inMemory(lin.name(), PeftKeys.Factor.A, a.name()), a.a(), a.gradA()));
                out.add(new Parameter(PeftKeys.inMemory(lin.name(), PeftKeys.Factor.B, a.name()), a.b(), a.gradB()));
            }
        }
        return out;
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
        for (DecoderBlock blk : blocks) {
            blk.setNormsTrainable(full);
        }
        head.norm.setTrainable(full);
        embedding.setTrainable(full);
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

    /** Zeroes every gradient: base weights (when trainable) and all adapters. */
    public void zeroGrad() {
        for (LoraLinear l : linears.values()) {
            l.zeroGrad();
        }
        for (DecoderBlock blk : blocks) {
            blk.zeroNormGrads();
        }
        head.norm.zeroGrad();
        embedding.zeroGrad();
    }

    // ---------------------------------------------------------------------------------------------
    // Hooks

    /** Adds a hook after block {@code layer} (0-based); hooks of one layer run in the order added. */
    public void addResidualHook(int layer, ResidualHook hook) {
        hooks.add(layer, hook);
    }

    public boolean removeResidualHook(int layer, ResidualHook hook) {
        return hooks.remove(layer, hook);
    }

    public void clearResidualHooks() {
        hooks.clear();
    }

    // ---------------------------------------------------------------------------------------------
    // Forward, loss, backward

    /**
     * Logits for every position.
     *
     * @param tokens    [batch·seq] token ids, sequence after sequence
     * @param tokenMask [batch·seq] or null (all true): handed to the residual hooks
     * @return [batch·seq, vocab] 'f'; owned by the model and overwritten by the next pass
     */
    public INDArray forward(int[] tokens, boolean[] tokenMask, int batch, int seq) {
        return forward(tokens, tokenMask, batch, seq, blocks.length);
    }

    /** The forward, with the blocks from {@code keepFrom} up saving their activations for a backward. */
    private INDArray forward(int[] tokens, boolean[] tokenMask, int batch, int seq, int keepFrom) {
        checkInput(tokens, tokenMask, batch, seq);
        Workspace w = workspace(batch, seq);
        rope.ensure(seq);
        runBlocks(w, tokens, tokenMask == null ? null : tokenMask.clone(), null, null, null, keepFrom);
        return head.forward(w);
    }

    /**
     * Forward plus the next-token cross-entropy: the mean over every position {@code t < seq − 1} whose
     * target token {@code t + 1} has {@code lossMask[b·seq + t + 1]} true (null: all), as Hugging Face's
     * {@code labels} with −100 at the masked tokens. Prepares {@link #backward}.
     */
    public double loss(int[] tokens, boolean[] lossMask, int batch, int seq) {
        // Blocks below the lowest trainable one get no backward, so they save nothing for it.
        int keepFrom = Math.max(0, lowestTrainableLayer());
        forward(tokens, lossMask, batch, seq, keepFrom);
        keptFrom = keepFrom;
        double l = head.loss(tokens, lossMask, batch, seq);
        backwardReady = true;
        return l;
    }

    /** {@link #loss} then {@link #backward}: the loss, with gradients accumulated. */
    public double lossAndBackward(int[] tokens, boolean[] lossMask, int batch, int seq) {
        double l = loss(tokens, lossMask, batch, seq);
        backward(1.0);
        return l;
    }

    /**
     * Backward through the most recent {@link #loss} for the loss multiplied by {@code lossScale}
     * (1 for the loss itself; gradient accumulation over micro-batches weights each one's mean loss
     * by its share of the targets): accumulates the gradients of everything trainable. Blocks
     * below the lowest trainable part are skipped.
     */
    public void backward(double lossScale) {
        if (!Double.isFinite(lossScale)) {
            throw new IllegalArgumentException("lossScale must be finite, got " + lossScale);
        }
        if (!backwardReady) {
            throw new IllegalStateException("backward needs a loss(...) first (and at most one backward per loss)");
        }
        backwardReady = false;
        Workspace w = work;
        int lowest = lowestTrainableLayer();
        if (Math.max(lowest, 0) < keptFrom) {
            throw new IllegalStateException("layer " + Math.max(lowest, 0) + " became trainable after the loss, which "
                    + "saved activations from layer " + keptFrom + " up: run the loss again");
        }
        head.backward(w, lossScale, lowest < blocks.length);
        if (lowest >= blocks.length) {
            return;
        }
        for (int li = blocks.length - 1; li >= Math.max(lowest, 0); li--) {
            hooks.backward(li, w);
            blocks[li].backward(w, li == lowest ? blocks[li].lowestTrainablePart() : -1);
        }
        if (lowest < 0) {
            embedding.backward(w.grads().dh);
        }
    }

    /** -1 when the embedding trains; numLayers when only lm_head does. */
    private int lowestTrainableLayer() {
        if (fullFinetune) {
            return -1;
        }
        for (DecoderBlock blk : blocks) {
            if (blk.lowestTrainablePart() < blk.linears().size()) {
                return blk.index;
            }
        }
        return blocks.length;
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
        String bad = badId(tokens);
        if (bad != null) {
            throw new IllegalArgumentException(bad);
        }
    }

    /** Null when every id lies in the vocabulary, else what is wrong with the first that does not. */
    String badId(int[] tokens) {
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocab) {
                return "token id " + tokens[i] + " at position " + i + " is outside the vocabulary [0, " + vocab + ")";
            }
        }
        return null;
    }

    // ---------------------------------------------------------------------------------------------
    // The pass machinery, shared with Generator

    /** The scratch of (batch, seq), made anew when the shape changes; any pending backward is void. */
    Workspace workspace(int batch, int seq) {
        backwardReady = false;
        if (work == null || work.batch != batch || work.seq != seq) {
            SwiGluMlp.Scratch[] chunks = work == null ? null : work.chunks;
            work = null;  // let the old buffers go before allocating the new ones
            work = new Workspace(config, dtype, batch, seq, chunks);
        }
        return work;
    }

    /**
     * Embeds tokens [w.n] into w.h and runs every block and its hooks; mask (null: all true) goes
     * to the hooks. With caches (one per layer), sequence bi of the pass continues slot slots[bi]
     * after past[bi] positions (see {@link SelfAttention#forward}).
     */
    void runBlocks(Workspace w, int[] tokens, boolean[] mask, SelfAttention.KvCache[] caches, int[] slots, int[] past) {
        runBlocks(w, tokens, mask, caches, slots, past, blocks.length);
    }

    /** As above, with the blocks from {@code keepFrom} up saving their activations for a backward. */
    private void runBlocks(Workspace w, int[] tokens, boolean[] mask, SelfAttention.KvCache[] caches, int[] slots,
                           int[] past, int keepFrom) {
        embedding.forward(tokens, w.n, w.h);
        for (DecoderBlock blk : blocks) {
            blk.forward(w, caches == null ? null : caches[blk.index], slots, past, blk.index >= keepFrom);
            hooks.forward(blk.index, w, mask);
        }
    }

    /** A KV cache per layer with {@code slots} sequences of up to {@code capacity} positions. */
    SelfAttention.KvCache[] newCaches(int slots, int capacity) {
        SelfAttention.KvCache[] c = new SelfAttention.KvCache[blocks.length];
        for (int i = 0; i < c.length; i++) {
            c[i] = new SelfAttention.KvCache(dtype, slots, capacity, config.kvDim());
        }
        return c;
    }

    Rope rope() {
        return rope;
    }

    LmHead head() {
        return head;
    }

    // ---------------------------------------------------------------------------------------------
    // Generation

    /** Picks the highest logit (the first on ties). */
    public static ToIntFunction<float[]> greedy() {
        return Generator.greedy();
    }

    /**
     * Continues one prompt ({@link Generator} continues many at once). Residual hooks apply to the
     * prompt and to every generated token.
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
        Generator.Request r = new Generator.Request(prompt, maxNewTokens, stopTokenIds, next);
        return useKvCache ? new Generator(this).generate(List.of(r)).get(0) : Generator.withoutCache(this, r);
    }

    @Override
    public String toString() {
        return "DecoderModel[" + config.architecture() + ", layers=" + blocks.length + ", d=" + d + ", heads="
                + config.numHeads() + "/" + config.numKvHeads() + ", vocab=" + vocab + ", " + dtype
                + (fullFinetune ? ", full fine-tune" : "") + "]";
    }
}

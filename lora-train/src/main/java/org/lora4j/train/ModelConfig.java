package org.lora4j.train;

import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.node.ArrayNode;
import org.nd4j.shade.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * The shape of a Llama/Qwen2-style decoder, as a Hugging Face {@code config.json} describes it.
 *
 * @param architecture          which Hugging Face class the checkpoint names; decides the defaults of the biases
 * @param vocabSize             {@code vocab_size}
 * @param hiddenSize            {@code hidden_size} (d_model)
 * @param intermediateSize      {@code intermediate_size} (d_ff of the SwiGLU MLP)
 * @param numLayers             {@code num_hidden_layers}
 * @param numHeads              {@code num_attention_heads}
 * @param numKvHeads            {@code num_key_value_heads}; must divide numHeads (grouped-query attention)
 * @param headDim               {@code head_dim}, or hiddenSize / numHeads when the file has none
 * @param rmsNormEps            {@code rms_norm_eps}
 * @param ropeTheta             {@code rope_theta}
 * @param ropeScaling           {@code rope_scaling}, or null for none
 * @param maxPositionEmbeddings {@code max_position_embeddings}: the longest sequence accepted
 * @param tieWordEmbeddings     {@code tie_word_embeddings}: lm_head shares model.embed_tokens.weight
 * @param attentionBias         q/k/v projections carry a bias (Qwen2 always; Llama when {@code attention_bias})
 * @param outputBias            o_proj carries a bias (Llama's {@code attention_bias}; never in Qwen2)
 * @param mlpBias               gate/up/down carry a bias (Llama's {@code mlp_bias})
 * @param bosTokenId            {@code bos_token_id}, or -1 when absent
 * @param eosTokenIds           {@code eos_token_id} (a number or a list in the file)
 */
public record ModelConfig(Architecture architecture, int vocabSize, int hiddenSize, int intermediateSize,
                          int numLayers, int numHeads, int numKvHeads, int headDim, double rmsNormEps,
                          double ropeTheta, RopeScaling ropeScaling, int maxPositionEmbeddings,
                          boolean tieWordEmbeddings, boolean attentionBias, boolean outputBias, boolean mlpBias,
                          int bosTokenId, List<Integer> eosTokenIds) {

    /** The Hugging Face model classes this decoder reproduces. */
    public enum Architecture {
        LLAMA("LlamaForCausalLM", "llama"),
        QWEN2("Qwen2ForCausalLM", "qwen2");

        private final String hfClass;
        private final String modelType;

        Architecture(String hfClass, String modelType) {
            this.hfClass = hfClass;
            this.modelType = modelType;
        }

        public String hfClass() {
            return hfClass;
        }

        public String modelType() {
            return modelType;
        }
    }

    /**
     * {@code rope_scaling}: "linear" divides every frequency by factor; "llama3" (Llama 3.1/3.2) divides
     * only the low frequencies, blending between low_freq_factor and high_freq_factor wavelengths.
     */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                              int originalMaxPositionEmbeddings) {
        public RopeScaling {
            Objects.requireNonNull(type, "type");
            if (!type.equals("linear") && !type.equals("llama3")) {
                throw new IllegalArgumentException("rope_scaling type '" + type
                        + "' is not supported (supported: linear, llama3)");
            }
            if (!(factor > 0)) {
                throw new IllegalArgumentException("rope_scaling factor must be > 0, got " + factor);
            }
        }
    }

    public ModelConfig {
        Objects.requireNonNull(architecture, "architecture");
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numLayers);
        positive("num_attention_heads", numHeads);
        positive("num_key_value_heads", numKvHeads);
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositionEmbeddings);
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads (" + numHeads
                    + ") must be a multiple of num_key_value_heads (" + numKvHeads + ")");
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for rotary embeddings, got " + headDim);
        }
        if (!(rmsNormEps > 0)) {
            throw new IllegalArgumentException("rms_norm_eps must be > 0, got " + rmsNormEps);
        }
        if (!(ropeTheta > 0)) {
            throw new IllegalArgumentException("rope_theta must be > 0, got " + ropeTheta);
        }
        eosTokenIds = List.copyOf(Objects.requireNonNull(eosTokenIds, "eosTokenIds"));
        for (int id : eosTokenIds) {
            if (id < 0 || id >= vocabSize) {
                throw new IllegalArgumentException("eos_token_id " + id + " is outside the vocabulary [0, " + vocabSize + ")");
            }
        }
        if (bosTokenId >= vocabSize) {
            throw new IllegalArgumentException("bos_token_id " + bosTokenId + " is outside the vocabulary [0, " + vocabSize + ")");
        }
    }

    private static void positive(String key, int value) {
        if (value < 1) {
            throw new IllegalArgumentException(key + " must be >= 1, got " + value);
        }
    }

    /**
     * A Llama-style configuration with Hugging Face's defaults for the rest: rms_norm_eps 1e-6,
     * rope_theta 10000, no biases, untied embeddings, 2048 positions, no bos/eos.
     */
    public static ModelConfig llama(int vocabSize, int hiddenSize, int intermediateSize, int numLayers,
                                    int numHeads, int numKvHeads) {
        checkDivides(hiddenSize, numHeads);
        return new ModelConfig(Architecture.LLAMA, vocabSize, hiddenSize, intermediateSize, numLayers, numHeads,
                numKvHeads, hiddenSize / numHeads, 1e-6, 10000.0, null, 2048, false, false, false, false,
                -1, List.of());
    }

    /** A Qwen2-style configuration: as {@link #llama} but with q/k/v biases and rope_theta 1e6. */
    public static ModelConfig qwen2(int vocabSize, int hiddenSize, int intermediateSize, int numLayers,
                                    int numHeads, int numKvHeads) {
        checkDivides(hiddenSize, numHeads);
        return new ModelConfig(Architecture.QWEN2, vocabSize, hiddenSize, intermediateSize, numLayers, numHeads,
                numKvHeads, hiddenSize / numHeads, 1e-6, 1e6, null, 2048, false, true, false, false,
                -1, List.of());
    }

    private static void checkDivides(int hiddenSize, int numHeads) {
        if (numHeads < 1 || hiddenSize % numHeads != 0) {
            throw new IllegalArgumentException("hidden_size (" + hiddenSize
                    + ") must be a multiple of num_attention_heads (" + numHeads + ")");
        }
    }

    public ModelConfig withTiedEmbeddings(boolean tied) {
        return new ModelConfig(architecture, vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads,
                headDim, rmsNormEps, ropeTheta, ropeScaling, maxPositionEmbeddings, tied, attentionBias, outputBias,
                mlpBias, bosTokenId, eosTokenIds);
    }

    public ModelConfig withMaxPositionEmbeddings(int maxPositions) {
        return new ModelConfig(architecture, vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads,
                headDim, rmsNormEps, ropeTheta, ropeScaling, maxPositions, tieWordEmbeddings, attentionBias, outputBias,
                mlpBias, bosTokenId, eosTokenIds);
    }

    public ModelConfig withSpecialTokens(int bos, List<Integer> eos) {
        return new ModelConfig(architecture, vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads,
                headDim, rmsNormEps, ropeTheta, ropeScaling, maxPositionEmbeddings, tieWordEmbeddings, attentionBias,
                outputBias, mlpBias, bos, eos);
    }

    public ModelConfig withRope(double theta, RopeScaling scaling) {
        return new ModelConfig(architecture, vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads,
                headDim, rmsNormEps, theta, scaling, maxPositionEmbeddings, tieWordEmbeddings, attentionBias,
                outputBias, mlpBias, bosTokenId, eosTokenIds);
    }

    /** Width of the q projection's output: numHeads · headDim. */
    public int qDim() {
        return numHeads * headDim;
    }

    /** Width of the k and v projections' outputs: numKvHeads · headDim. */
    public int kvDim() {
        return numKvHeads * headDim;
    }

    // ---------------------------------------------------------------------------------------------
    // config.json

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Reads a Hugging Face {@code config.json}; unknown keys are ignored. */
    public static ModelConfig fromHfConfig(Path configJson) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(configJson));
        } catch (IOException e) {
            throw new IOException(configJson + ": cannot read config: " + e.getMessage(), e);
        }
        try {
            return fromJson(root);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(configJson + ": " + e.getMessage(), e);
        }
    }

    static ModelConfig fromJson(JsonNode root) {
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException("config must be a JSON object");
        }
        Architecture arch = architectureOf(root);
        String act = text(root, "hidden_act", "silu");
        if (!act.equals("silu")) {
            throw new IllegalArgumentException("hidden_act '" + act + "' is not supported (only silu)");
        }
        if (root.path("use_sliding_window").asBoolean(false)) {
            throw new IllegalArgumentException("use_sliding_window=true is not supported (full causal attention only)");
        }
        int hidden = requiredInt(root, "hidden_size");
        int heads = requiredInt(root, "num_attention_heads");
        int headDim;
        if (root.hasNonNull("head_dim")) {
            headDim = requiredInt(root, "head_dim");
        } else {
            checkDivides(hidden, heads);
            headDim = hidden / heads;
        }
        int kvHeads = root.hasNonNull("num_key_value_heads") ? requiredInt(root, "num_key_value_heads") : heads;
        boolean attnBias = arch == Architecture.QWEN2 || root.path("attention_bias").asBoolean(false);
        boolean outBias = arch == Architecture.LLAMA && root.path("attention_bias").asBoolean(false);
        boolean mlpBias = arch == Architecture.LLAMA && root.path("mlp_bias").asBoolean(false);
        RopeScaling scaling = null;
        JsonNode rs = root.get("rope_scaling");
        if (rs != null && !rs.isNull()) {
            String type = rs.hasNonNull("rope_type") ? rs.get("rope_type").asText() : rs.path("type").asText("");
            if (!type.equals("default")) {
                scaling = new RopeScaling(type, rs.path("factor").asDouble(1.0), rs.path("low_freq_factor").asDouble(1.0),
                        rs.path("high_freq_factor").asDouble(4.0),
                        rs.path("original_max_position_embeddings").asInt(8192));
            }
        }
        List<Integer> eos = new ArrayList<>();
        JsonNode eosNode = root.get("eos_token_id");
        if (eosNode != null && eosNode.isArray()) {
            eosNode.forEach(e -> eos.add(e.asInt()));
        } else if (eosNode != null && eosNode.isNumber()) {
            eos.add(eosNode.asInt());
        }
        JsonNode bos = root.get("bos_token_id");
        int bosId = bos != null && bos.isNumber() ? bos.asInt() : -1;
        return new ModelConfig(arch, requiredInt(root, "vocab_size"), hidden, requiredInt(root, "intermediate_size"),
                requiredInt(root, "num_hidden_layers"), heads, kvHeads, headDim,
                root.path("rms_norm_eps").asDouble(1e-6), root.path("rope_theta").asDouble(10000.0), scaling,
                root.path("max_position_embeddings").asInt(2048),
                root.path("tie_word_embeddings").asBoolean(false),  // LlamaConfig and Qwen2Config default to false
                attnBias, outBias, mlpBias, bosId, eos);
    }

    private static Architecture architectureOf(JsonNode root) {
        JsonNode archs = root.get("architectures");
        if (archs != null && archs.isArray() && archs.size() > 0) {
            String name = archs.get(0).asText();
            for (Architecture a : Architecture.values()) {
                if (a.hfClass.equals(name)) {
                    return a;
                }
            }
            throw new IllegalArgumentException("architecture '" + name
                    + "' is not supported (supported: LlamaForCausalLM, Qwen2ForCausalLM)");
        }
        String type = root.path("model_type").asText("");
        for (Architecture a : Architecture.values()) {
            if (a.modelType.equals(type)) {
                return a;
            }
        }
        throw new IllegalArgumentException("config names neither 'architectures' nor a supported 'model_type' (got '"
                + type + "'; supported: llama, qwen2)");
    }

    private static int requiredInt(JsonNode root, String key) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            throw new IllegalArgumentException("missing required key '" + key + "'");
        }
        if (!n.canConvertToInt() || !n.isIntegralNumber()) {
            throw new IllegalArgumentException("key '" + key + "' must be an integer, got " + n);
        }
        return n.asInt();
    }

    private static String text(JsonNode root, String key, String dflt) {
        JsonNode n = root.get(key);
        return n == null || n.isNull() ? dflt : n.asText().toLowerCase(Locale.ROOT);
    }

    /** The {@code config.json} Hugging Face's {@code AutoConfig} reads back as this configuration. */
    public String toHfJson() {
        ObjectNode o = JSON.createObjectNode();
        o.putArray("architectures").add(architecture.hfClass);
        o.put("model_type", architecture.modelType);
        o.put("vocab_size", vocabSize);
        o.put("hidden_size", hiddenSize);
        o.put("intermediate_size", intermediateSize);
        o.put("num_hidden_layers", numLayers);
        o.put("num_attention_heads", numHeads);
        o.put("num_key_value_heads", numKvHeads);
        o.put("head_dim", headDim);
        o.put("hidden_act", "silu");
        o.put("rms_norm_eps", rmsNormEps);
        o.put("rope_theta", ropeTheta);
        if (ropeScaling != null) {
            ObjectNode r = o.putObject("rope_scaling");
            r.put("rope_type", ropeScaling.type());
            r.put("factor", ropeScaling.factor());
            if (ropeScaling.type().equals("llama3")) {
                r.put("low_freq_factor", ropeScaling.lowFreqFactor());
                r.put("high_freq_factor", ropeScaling.highFreqFactor());
                r.put("original_max_position_embeddings", ropeScaling.originalMaxPositionEmbeddings());
            }
        }
        o.put("max_position_embeddings", maxPositionEmbeddings);
        o.put("tie_word_embeddings", tieWordEmbeddings);
        if (architecture == Architecture.LLAMA) {
            o.put("attention_bias", attentionBias);
            o.put("mlp_bias", mlpBias);
        } else {
            o.put("use_sliding_window", false);
        }
        if (bosTokenId >= 0) {
            o.put("bos_token_id", bosTokenId);
        }
        if (eosTokenIds.size() == 1) {
            o.put("eos_token_id", eosTokenIds.get(0));
        } else if (!eosTokenIds.isEmpty()) {
            ArrayNode a = o.putArray("eos_token_id");
            eosTokenIds.forEach(a::add);
        }
        o.put("torch_dtype", "float32");
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n";
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}

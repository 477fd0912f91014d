package org.lora4j.train.model;

import org.lora4j.train.text.TextFiles;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
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
                throw new IllegalArgumentException("rope_scaling type " + TextFiles.quote(type)
                        + " is not supported (supported: linear, llama3)");
            }
            if (!(factor > 0) || !Double.isFinite(factor)) {
                throw new IllegalArgumentException("rope_scaling factor must be a finite number > 0, got " + factor);
            }
            if (type.equals("llama3")) {
                // The smoothing divides by high - low; transformers asks for high > low too.
                if (!(lowFreqFactor > 0) || !Double.isFinite(highFreqFactor) || !(highFreqFactor > lowFreqFactor)) {
                    throw new IllegalArgumentException("rope_scaling needs 0 < low_freq_factor < high_freq_factor,"
                            + " got low_freq_factor " + lowFreqFactor + ", high_freq_factor " + highFreqFactor);
                }
                if (originalMaxPositionEmbeddings < 1) {
                    throw new IllegalArgumentException("rope_scaling original_max_position_embeddings must be >= 1, got "
                            + originalMaxPositionEmbeddings);
                }
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
        // The q/k/v widths are ints (Java arrays); a product past that would wrap to nonsense.
        if ((long) numHeads * headDim > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("num_attention_heads (" + numHeads + ") x head_dim (" + headDim
                    + ") is too large");
        }
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads (" + numHeads
                    + ") must be a multiple of num_key_value_heads (" + numKvHeads + ")");
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for rotary embeddings, got " + headDim);
        }
        if (!(rmsNormEps > 0) || !Double.isFinite(rmsNormEps)) {
            throw new IllegalArgumentException("rms_norm_eps must be a finite number > 0, got " + rmsNormEps);
        }
        if (!(ropeTheta > 0) || !Double.isFinite(ropeTheta)) {
            throw new IllegalArgumentException("rope_theta must be a finite number > 0, got " + ropeTheta);
        }
        eosTokenIds = List.copyOf(Objects.requireNonNull(eosTokenIds, "eosTokenIds"));
        for (int id : eosTokenIds) {
            if (id < 0 || id >= vocabSize) {
                throw new IllegalArgumentException("eos_token_id " + id + " is outside the vocabulary [0, " + vocabSize + ")");
            }
        }
        if (bosTokenId < -1 || bosTokenId >= vocabSize) {
            throw new IllegalArgumentException("bos_token_id " + bosTokenId + " is outside the vocabulary [0, " + vocabSize
                    + ") (-1 stands for none)");
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

    /** A key given twice and text after the object are errors, not silently resolved. */
    private static final ObjectReader STRICT_JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .reader()
            .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    static final String CONFIG_FILE = "config.json";

    /** Far larger than any real config.json (a few kB); a bigger file is something else. */
    private static final long MAX_CONFIG_BYTES = 16 << 20;

    /** What a model directory holds, for the messages that find something missing. */
    static final String MODEL_DIRECTORY_LAYOUT = "a model directory holds config.json, the weights"
            + " (model.safetensors, or model.safetensors.index.json and its shards) and tokenizer.json";

    /**
     * Reads {@code config.json} of a model directory, first checking that the directory exists and holds
     * one, so that a wrong path is reported as a missing directory and not as a missing file in it.
     *
     * @throws java.nio.file.NoSuchFileException when the directory or its config.json does not exist
     * @throws IOException              when config.json cannot be read or is not valid UTF-8 JSON
     * @throws IllegalArgumentException when a value is missing, of the wrong type or unsupported; the
     *                                  message names the file, the key and the value
     */
    public static ModelConfig fromModelDirectory(Path dir) throws IOException {
        Objects.requireNonNull(dir, "dir");
        if (!Files.exists(dir)) {
            throw new NoSuchFileException(dir.toString(), null, "model directory does not exist; "
                    + MODEL_DIRECTORY_LAYOUT);
        }
        if (!Files.isDirectory(dir)) {
            throw new IOException(dir + " is not a directory; expected a model directory: " + MODEL_DIRECTORY_LAYOUT);
        }
        Path config = dir.resolve(CONFIG_FILE);
        if (!Files.exists(config)) {
            throw new NoSuchFileException(config.toString(), null, "the model directory has no " + CONFIG_FILE
                    + "; " + MODEL_DIRECTORY_LAYOUT);
        }
        return fromHfConfig(config);
    }

    /**
     * Reads a Hugging Face {@code config.json}. Unknown keys are ignored; the keys read must have the
     * type Hugging Face gives them (a string where a number belongs is refused, not guessed at), and a
     * {@code model_type} or architecture this decoder does not reproduce is refused with the supported list.
     *
     * @throws java.nio.file.NoSuchFileException when there is no such file
     * @throws IOException              when it cannot be read, is not UTF-8, or is not one JSON object; the
     *                                  message names the file and the line
     * @throws IllegalArgumentException when a value is missing, of the wrong type or unsupported; the
     *                                  message names the file, the key and the value
     */
    public static ModelConfig fromHfConfig(Path configJson) throws IOException {
        Objects.requireNonNull(configJson, "configJson");
        if (Files.isRegularFile(configJson) && Files.size(configJson) > MAX_CONFIG_BYTES) {
            throw new IOException(configJson + ": " + Files.size(configJson) + " bytes is not a config.json"
                    + " (a few kB of JSON)");
        }
        String text = TextFiles.readUtf8(configJson, "model config file (config.json)");
        JsonNode root;
        try {
            root = STRICT_JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new IOException(configJson + ":" + TextFiles.jsonLocation(e).getLineNr() + ": not valid JSON at column "
                    + TextFiles.jsonLocation(e).getColumnNr() + ": " + TextFiles.jsonMessage(e), e);
        }
        try {
            return fromJson(root);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(configJson + ": " + e.getMessage(), e);
        }
    }

    /**
     * config.json's {@code _name_or_path} (Hugging Face writes the hub id there), or null when the key
     * is absent, null or blank. Read apart from the shape: it names the model, it does not build it.
     */
    static String nameOrPath(Path configJson) throws IOException {
        JsonNode root;
        try {
            root = STRICT_JSON.readTree(TextFiles.readUtf8(configJson, "model config file (config.json)"));
        } catch (JsonProcessingException e) {
            throw new IOException(configJson + ": not valid JSON: " + TextFiles.jsonMessage(e), e);
        }
        JsonNode n = root == null ? null : root.get("_name_or_path");
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isTextual()) {
            throw new IllegalArgumentException(configJson + ": _name_or_path must be a string, got " + n);
        }
        return n.asText().isBlank() ? null : n.asText();
    }

    static ModelConfig fromJson(JsonNode root) {
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException("config must be a JSON object, got " + describe(root));
        }
        Architecture arch = architectureOf(root);
        String act = optionalString(root, "hidden_act", "silu");
        if (!act.toLowerCase(Locale.ROOT).equals("silu")) {
            throw new IllegalArgumentException("hidden_act " + TextFiles.quote(act) + " is not supported (only silu)");
        }
        if (optionalBoolean(root, "use_sliding_window", false)) {
            throw new IllegalArgumentException("use_sliding_window=true is not supported (full causal attention only)");
        }
        int hidden = requiredInt(root, "hidden_size");
        int heads = requiredInt(root, "num_attention_heads");
        positive("hidden_size", hidden);
        positive("num_attention_heads", heads);
        int headDim;
        if (root.hasNonNull("head_dim")) {
            headDim = requiredInt(root, "head_dim");
        } else {
            checkDivides(hidden, heads);
            headDim = hidden / heads;
        }
        int kvHeads = root.hasNonNull("num_key_value_heads") ? requiredInt(root, "num_key_value_heads") : heads;
        boolean attentionBiasKey = optionalBoolean(root, "attention_bias", false);
        boolean mlpBiasKey = optionalBoolean(root, "mlp_bias", false);
        boolean attnBias = arch == Architecture.QWEN2 || attentionBiasKey;
        boolean outBias = arch == Architecture.LLAMA && attentionBiasKey;
        boolean mlpBias = arch == Architecture.LLAMA && mlpBiasKey;
        RopeScaling scaling = ropeScaling(root.get("rope_scaling"));
        List<Integer> eos = new ArrayList<>();
        JsonNode eosNode = root.get("eos_token_id");
        if (eosNode != null && eosNode.isArray()) {
            for (int i = 0; i < eosNode.size(); i++) {
                eos.add(tokenId(eosNode.get(i), "eos_token_id[" + i + "]"));
            }
        } else if (eosNode != null && !eosNode.isNull()) {
            eos.add(tokenId(eosNode, "eos_token_id"));
        }
        JsonNode bos = root.get("bos_token_id");
        int bosId = bos == null || bos.isNull() ? -1 : tokenId(bos, "bos_token_id");
        return new ModelConfig(arch, requiredInt(root, "vocab_size"), hidden, requiredInt(root, "intermediate_size"),
                requiredInt(root, "num_hidden_layers"), heads, kvHeads, headDim,
                optionalFiniteDouble(root, "rms_norm_eps", 1e-6), optionalFiniteDouble(root, "rope_theta", 10000.0),
                scaling, optionalInt(root, "max_position_embeddings", 2048),
                optionalBoolean(root, "tie_word_embeddings", false),  // LlamaConfig and Qwen2Config default to false
                attnBias, outBias, mlpBias, bosId, eos);
    }

    private static RopeScaling ropeScaling(JsonNode rs) {
        if (rs == null || rs.isNull()) {
            return null;
        }
        if (!rs.isObject()) {
            throw new IllegalArgumentException("rope_scaling must be an object or null, got " + describe(rs));
        }
        // transformers names it rope_type since 4.43, type before
        String type = rs.hasNonNull("rope_type") ? optionalString(rs, "rope_type", "")
                : optionalString(rs, "type", "");
        if (type.equals("default")) {
            return null;
        }
        try {
            double factor = optionalFiniteDouble(rs, "factor", 1.0);
            if (type.equals("linear")) {
                // linear reads only factor; the others keep their defaults so that toHfJson reads back equal
                return new RopeScaling(type, factor, 1.0, 4.0, 8192);
            }
            return new RopeScaling(type, factor,
                    optionalFiniteDouble(rs, "low_freq_factor", 1.0), optionalFiniteDouble(rs, "high_freq_factor", 4.0),
                    optionalInt(rs, "original_max_position_embeddings", 8192));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(e.getMessage().startsWith("rope_scaling") ? e.getMessage()
                    : "rope_scaling." + e.getMessage(), e);
        }
    }

    private static int tokenId(JsonNode n, String key) {
        if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() < 0) {
            throw new IllegalArgumentException(key + " must be a token id (an integer >= 0), got " + describe(n));
        }
        return n.asInt();
    }

    /**
     * The supported classes, from {@code model_type} (what {@code AutoConfig} dispatches on) and
     * {@code architectures} (what {@code AutoModelForCausalLM} instantiates); either may be absent, but
     * each present must be supported and both must name the same model.
     */
    private static Architecture architectureOf(JsonNode root) {
        Architecture byType = null;
        JsonNode typeNode = root.get("model_type");
        if (typeNode != null && !typeNode.isNull()) {
            String type = optionalString(root, "model_type", "");
            for (Architecture a : Architecture.values()) {
                if (a.modelType.equals(type)) {
                    byType = a;
                }
            }
            if (byType == null) {
                throw new IllegalArgumentException("model_type " + TextFiles.quote(type) + " is not supported (supported: "
                        + supported(true) + ")");
            }
        }
        Architecture byClass = null;
        JsonNode archs = root.get("architectures");
        if (archs != null && !archs.isNull()) {
            if (!archs.isArray()) {
                throw new IllegalArgumentException("architectures must be a list of class names, got " + describe(archs));
            }
            for (int i = 0; i < archs.size(); i++) {
                JsonNode n = archs.get(i);
                Architecture found = null;
                for (Architecture a : Architecture.values()) {
                    if (n.isTextual() && a.hfClass.equals(n.asText())) {
                        found = a;
                    }
                }
                if (found == null) {
                    throw new IllegalArgumentException("architectures[" + i + "] "
                            + (n.isTextual() ? TextFiles.quote(n.asText()) : describe(n))
                            + " is not supported (supported: " + supported(false) + ")");
                }
                if (byClass != null && byClass != found) {
                    throw new IllegalArgumentException("architectures names two different models, " + archs);
                }
                byClass = found;
            }
        }
        if (byType != null && byClass != null && byType != byClass) {
            throw new IllegalArgumentException("model_type '" + byType.modelType + "' and architectures "
                    + archs + " name different models");
        }
        if (byType == null && byClass == null) {
            throw new IllegalArgumentException("config names neither 'model_type' nor 'architectures' (supported: "
                    + supported(true) + ")");
        }
        return byType != null ? byType : byClass;
    }

    private static String supported(boolean modelTypes) {
        List<String> names = new ArrayList<>();
        for (Architecture a : Architecture.values()) {
            names.add(modelTypes ? a.modelType : a.hfClass);
        }
        return String.join(", ", names);
    }

    private static int requiredInt(JsonNode root, String key) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            throw new IllegalArgumentException("missing required key '" + key + "'" + (n == null ? "" : " (it is null)"));
        }
        return intValue(n, key);
    }

    private static int optionalInt(JsonNode root, String key, int dflt) {
        JsonNode n = root.get(key);
        return n == null || n.isNull() ? dflt : intValue(n, key);
    }

    private static int intValue(JsonNode n, String key) {
        if (!n.isIntegralNumber() || !n.canConvertToInt()) {
            throw new IllegalArgumentException(key + " must be an integer, got " + describe(n));
        }
        return n.asInt();
    }

    private static double optionalFiniteDouble(JsonNode root, String key, double dflt) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isNumber() || !Double.isFinite(n.asDouble())) {
            throw new IllegalArgumentException(key + " must be a finite number, got " + describe(n));
        }
        return n.asDouble();
    }

    private static boolean optionalBoolean(JsonNode root, String key, boolean dflt) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isBoolean()) {
            throw new IllegalArgumentException(key + " must be true or false, got " + describe(n));
        }
        return n.asBoolean();
    }

    private static String optionalString(JsonNode root, String key, String dflt) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isTextual()) {
            throw new IllegalArgumentException(key + " must be a string, got " + describe(n));
        }
        return n.asText();
    }

    /** What a JSON value is, for an error message: its type and, shortened, its text. */
    private static String describe(JsonNode n) {
        if (n == null || n.isMissingNode()) {
            return "nothing";
        }
        if (n.isNull()) {
            return "null";
        }
        String kind = n.isTextual() ? "a string" : n.isNumber() ? "a number" : n.isBoolean() ? "a boolean"
                : n.isArray() ? "an array" : n.isObject() ? "an object" : n.getNodeType().toString();
        String text = n.toString();
        return kind + " " + (text.length() > 40 ? text.substring(0, 37) + "..." : text);
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

package org.lora4j.core;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.IntConsumer;

/**
 * Reads and writes LoRA adapters in the layout of PEFT's {@code save_pretrained}, so adapters move
 * between lora4j and Python ({@code PeftModel.from_pretrained}) in both directions.
 *
 * <p>An adapter directory holds {@code adapter_config.json} (PEFT's {@code LoraConfig} fields,
 * sorted, two-space indented, as Python's {@code json.dumps(indent=2, sort_keys=True)} writes
 * them) and {@code adapter_model.safetensors} with, per adapted module,
 * {@code base_model.model.<module path>.lora_A.weight} [r, in] and {@code ...lora_B.weight}
 * [out, r], metadata {@code {"format": "pt"}}.
 *
 * <p>Loading refuses what lora4j cannot reproduce rather than dropping it silently: DoRA, trained
 * biases, {@code modules_to_save}, per-module ranks ({@code rank_pattern}), GPT-2 style
 * {@code fan_in_fan_out}, and any tensor that is not a lora_A or lora_B weight.
 */
public final class PeftAdapters {
    private static final Logger LOG = LoggerFactory.getLogger(PeftAdapters.class);

    /** PEFT's configuration file name. */
    public static final String CONFIG_FILE = "adapter_config.json";
    /** PEFT's weights file name (safetensors; the older pickle {@code adapter_model.bin} is not read). */
    public static final String WEIGHTS_FILE = "adapter_model.safetensors";

    /** The layer-name patterns {@link LoraConfig#matches} knows; a layers_pattern outside them is refused. */
    private static final Set<String> LAYER_PATTERNS = Set.of("layers", "h", "block", "blocks", "layer");

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /**
     * Config keys that change what the weights mean, with the value lora4j needs. An absent key or
     * null counts as PEFT's default. Anything else is refused on load, because applying the weights
     * without it would give a different model than PEFT's.
     */
    private static final Map<String, String> MUST_BE_DEFAULT = new LinkedHashMap<>();

    static {
        MUST_BE_DEFAULT.put("use_dora", "DoRA rescales the adapted weight by a learned magnitude vector");
        MUST_BE_DEFAULT.put("fan_in_fan_out", "it marks GPT-2 Conv1D layers whose weight is [in, out]; lora4j layers take [out, in]");
        MUST_BE_DEFAULT.put("bias", "trained biases are saved beside the LoRA weights and lora4j does not apply them");
        MUST_BE_DEFAULT.put("lora_bias", "a bias on lora_B is not part of lora4j's LoRA layer");
        MUST_BE_DEFAULT.put("modules_to_save", "fully trained modules are saved beside the LoRA weights and lora4j does not apply them");
        MUST_BE_DEFAULT.put("rank_pattern", "per-module ranks are not supported; every module must have rank r");
        MUST_BE_DEFAULT.put("alpha_pattern", "per-module alphas are not supported; every module must use lora_alpha");
        MUST_BE_DEFAULT.put("layer_replication", "it duplicates base-model layers, which lora4j does not do");
        MUST_BE_DEFAULT.put("trainable_token_indices", "trained embedding rows are saved beside the LoRA weights");
        MUST_BE_DEFAULT.put("target_parameters", "LoRA on bare parameters (MoE experts) is not supported");
        MUST_BE_DEFAULT.put("alora_invocation_tokens", "activated LoRA changes which tokens the adapter applies to");
        MUST_BE_DEFAULT.put("use_qalora", "QA-LoRA pools the adapter input, which lora4j does not do");
    }

    private PeftAdapters() {
    }

    // ---------------------------------------------------------------------------------------------
    // Load

    /**
     * Reads an adapter directory written by PEFT's {@code save_pretrained} (or {@link #save}).
     *
     * <p>Keys of PEFT's in-memory form ({@code .lora_A.<adapter name>.weight}) are accepted too, as
     * long as one adapter name is used throughout. F16 and BF16 weights are widened to FLOAT, F64
     * stays DOUBLE. Unknown config keys are ignored (PEFT adds new ones every release). When
     * {@code target_modules} is a regular expression or absent, the config's targets become the
     * module paths found in the weights file.
     *
     * @throws FileFormatException naming the file and key at fault: peft_type other than LORA, r or
     *                             lora_alpha missing or out of range, a setting lora4j cannot apply
     *                             (see the class comment), a lora_A without its lora_B or the
     *                             reverse, a weight whose rank disagrees with r, an unexpected key
     */
    public static PeftAdapter load(Path dir) throws IOException {
        Objects.requireNonNull(dir, "dir");
        if (!Files.exists(dir)) {
            throw new NoSuchFileException(dir.toString(), null, "no such adapter directory; " + WHAT_A_DIRECTORY_HOLDS);
        }
        if (!Files.isDirectory(dir)) {
            throw new FileFormatException(dir, "is a file, not an adapter directory; " + WHAT_A_DIRECTORY_HOLDS);
        }
        Path configFile = dir.resolve(CONFIG_FILE);
        if (!Files.exists(configFile)) {
            throw new NoSuchFileException(configFile.toString(), null, "missing from the adapter directory"
                    + contents(dir) + "; " + WHAT_A_DIRECTORY_HOLDS);
        }
        JsonNode root = readConfig(configFile);
        String peftType = text(configFile, root, "peft_type", null);
        if (!"LORA".equals(peftType)) {
            throw new FileFormatException(configFile, "peft_type must be \"LORA\", got " + root.get("peft_type"));
        }
        Path weightsFile = dir.resolve(WEIGHTS_FILE);
        if (!Files.exists(weightsFile)) {
            Path pickle = dir.resolve("adapter_model.bin");
            if (Files.exists(pickle)) {
                throw new FileFormatException(pickle, "lora4j reads only " + WEIGHTS_FILE
                        + "; re-save the adapter with PEFT's save_pretrained(safe_serialization=True)");
            }
            throw new NoSuchFileException(weightsFile.toString(), null, "missing from the adapter directory"
                    + contents(dir) + "; " + WHAT_A_DIRECTORY_HOLDS);
        }
        checkDefaults(configFile, root);
        int rank = rank(configFile, root);
        double alpha = requiredNumber(configFile, root, "lora_alpha");
        double dropout = root.hasNonNull("lora_dropout") ? requiredNumber(configFile, root, "lora_dropout") : 0.0;
        boolean rslora = bool(configFile, root, "use_rslora", false);
        LoraConfig.Init init = init(configFile, root);
        List<Integer> layers = layersToTransform(configFile, root);
        String base = text(configFile, root, "base_model_name_or_path", null);

        Map<String, INDArray> loraA = new TreeMap<>();
        Map<String, INDArray> loraB = new TreeMap<>();
        readWeights(weightsFile, rank, loraA, loraB);

        List<String> targets = targetModules(configFile, root, loraA.keySet());
        LoraConfig config;
        try {
            config = new LoraConfig(rank, alpha, dropout, rslora, init, targets, layers);
        } catch (IllegalArgumentException e) {
            throw new FileFormatException(configFile, e.getMessage(), e);
        }
        LOG.debug("loaded {} LoRA modules (r {}, alpha {}) from {}", loraA.size(), rank, alpha, dir);
        try {
            return new PeftAdapter(config, base, loraA, loraB);
        } catch (IllegalArgumentException e) {
            // readWeights checked what the record checks; this keeps a missed case the file's error.
            throw new FileFormatException(weightsFile, e.getMessage(), e);
        }
    }

    /** adapter_config.json is about 1 KB; anything near this is the wrong file. */
    static final long MAX_CONFIG_BYTES = 16L << 20;

    private static final String WHAT_A_DIRECTORY_HOLDS = "a PEFT adapter directory (as save_pretrained writes it) holds "
            + CONFIG_FILE + " (the LoRA settings) and " + WEIGHTS_FILE + " (the lora_A and lora_B weights)";

    /** " (it holds a, b, c)" or " (it is empty)", so a user sees what is there instead. */
    private static String contents(Path dir) {
        try (java.util.stream.Stream<Path> files = Files.list(dir)) {
            List<String> names = files.map(p -> p.getFileName().toString()).sorted().limit(11).toList();
            if (names.isEmpty()) {
                return " (it is empty)";
            }
            return " (it holds " + String.join(", ", names.subList(0, Math.min(10, names.size())))
                    + (names.size() > 10 ? ", ..." : "") + ")";
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }

    private static JsonNode readConfig(Path configFile) throws IOException {
        if (Files.isDirectory(configFile)) {
            throw new FileFormatException(configFile, "is a directory, not a JSON file");
        }
        long size = Files.size(configFile);
        if (size > MAX_CONFIG_BYTES) {
            // Read whole, so bound it: a wrong file of gigabytes must not exhaust the heap.
            throw new FileFormatException(configFile, "is " + size + " bytes; an adapter config is a few KB (limit "
                    + MAX_CONFIG_BYTES + ")");
        }
        byte[] bytes = Files.readAllBytes(configFile);
        JsonNode root;
        try {
            root = JSON.readTree(new String(bytes, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new FileFormatException(configFile, "not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new FileFormatException(configFile, "expected a JSON object, got " + root);
        }
        return root;
    }

    private static void checkDefaults(Path configFile, JsonNode root) throws FileFormatException {
        for (Map.Entry<String, String> rule : MUST_BE_DEFAULT.entrySet()) {
            JsonNode v = root.get(rule.getKey());
            boolean isDefault = v == null || v.isNull()
                    || (v.isBoolean() && !v.booleanValue())
                    || ((v.isObject() || v.isArray()) && v.size() == 0)
                    || (rule.getKey().equals("bias") && "none".equals(v.asText()));
            if (!isDefault) {
                throw new FileFormatException(configFile, rule.getKey() + " = " + v + " is not supported: " + rule.getValue());
            }
        }
    }

    private static int rank(Path configFile, JsonNode root) throws FileFormatException {
        JsonNode r = root.get("r");
        if (r == null || r.isNull()) {
            throw new FileFormatException(configFile, "r (the LoRA rank) is missing");
        }
        if (!r.isIntegralNumber() || !r.canConvertToInt()) {
            throw new FileFormatException(configFile, "r must be an integer, got " + r);
        }
        if (r.intValue() < 1) {
            throw new FileFormatException(configFile, "r must be >= 1, got " + r.intValue());
        }
        return r.intValue();
    }

    private static double requiredNumber(Path configFile, JsonNode root, String key) throws FileFormatException {
        JsonNode v = root.get(key);
        if (v == null || v.isNull()) {
            throw new FileFormatException(configFile, key + " is missing");
        }
        if (!v.isNumber()) {
            throw new FileFormatException(configFile, key + " must be a number, got " + v);
        }
        return v.doubleValue();
    }

    private static boolean bool(Path configFile, JsonNode root, String key, boolean absent) throws FileFormatException {
        JsonNode v = root.get(key);
        if (v == null || v.isNull()) {
            return absent;
        }
        if (!v.isBoolean()) {
            throw new FileFormatException(configFile, key + " must be true or false, got " + v);
        }
        return v.booleanValue();
    }

    private static String text(Path configFile, JsonNode root, String key, String absent) throws FileFormatException {
        JsonNode v = root.get(key);
        if (v == null || v.isNull()) {
            return absent;
        }
        if (!v.isTextual()) {
            throw new FileFormatException(configFile, key + " must be a string, got " + v);
        }
        return v.textValue();
    }

    private static LoraConfig.Init init(Path configFile, JsonNode root) throws FileFormatException {
        JsonNode v = root.get("init_lora_weights");
        if (v == null || v.isNull()) {
            return LoraConfig.Init.DEFAULT;
        }
        if (!v.isBoolean() && !v.isTextual()) {
            throw new FileFormatException(configFile, "init_lora_weights must be true, false or a string, got " + v);
        }
        try {
            return LoraConfig.Init.fromPeft(v.asText());
        } catch (IllegalArgumentException e) {
            throw new FileFormatException(configFile, e.getMessage(), e);
        }
    }

    private static List<Integer> layersToTransform(Path configFile, JsonNode root) throws FileFormatException {
        JsonNode v = root.get("layers_to_transform");
        List<Integer> layers = new ArrayList<>();
        if (v == null || v.isNull()) {
            return layers;
        }
        if (v.isIntegralNumber() && v.canConvertToInt()) {
            layers.add(v.intValue());   // PEFT accepts a single index
        } else if (v.isArray()) {
            for (JsonNode i : v) {
                if (!i.isIntegralNumber() || !i.canConvertToInt() || i.intValue() < 0) {
                    throw new FileFormatException(configFile, "layers_to_transform must hold non-negative integers, got " + v);
                }
                layers.add(i.intValue());
            }
        } else {
            throw new FileFormatException(configFile, "layers_to_transform must be an integer or a list, got " + v);
        }
        JsonNode pattern = root.get("layers_pattern");
        if (pattern != null && !pattern.isNull() && !layers.isEmpty()) {
            List<JsonNode> names = new ArrayList<>();
            if (pattern.isArray()) {
                pattern.forEach(names::add);
            } else {
                names.add(pattern);
            }
            for (JsonNode name : names) {
                if (!LAYER_PATTERNS.contains(name.asText())) {
                    throw new FileFormatException(configFile, "layers_pattern " + pattern
                            + " is not supported; lora4j finds layer indices after one of " + new TreeSet<>(LAYER_PATTERNS));
                }
            }
        }
        return layers;
    }

    private static List<String> targetModules(Path configFile, JsonNode root, Set<String> modules) throws FileFormatException {
        JsonNode v = root.get("target_modules");
        if (v != null && v.isArray()) {
            List<String> targets = new ArrayList<>();
            for (JsonNode t : v) {
                if (!t.isTextual()) {
                    throw new FileFormatException(configFile, "target_modules must hold strings, got " + v);
                }
                targets.add(t.textValue());
            }
            return targets;
        }
        if (v != null && !v.isNull() && !v.isTextual()) {
            throw new FileFormatException(configFile, "target_modules must be a list or a string, got " + v);
        }
        // A regular expression (or nothing): lora4j matches names, not expressions, so the adapted
        // modules themselves become the targets. Saving back writes them as a list.
        LOG.debug("{}: target_modules {} replaced by the {} module paths in the weights", configFile, v, modules.size());
        return new ArrayList<>(modules);
    }

    private static void readWeights(Path weightsFile, int rank, Map<String, INDArray> loraA,
                                    Map<String, INDArray> loraB) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(weightsFile)) {
            String format = file.metadata().get("format");
            if (format != null && !format.equals("pt")) {
                LOG.warn("{}: metadata format '{}' (PEFT writes 'pt'); reading the weights anyway", weightsFile, format);
            }
            String firstKey = null;
            String adapterName = null;
            for (String key : file.keys()) {
                PeftKeys.Parsed m = PeftKeys.parseSaved(key);
                if (m == null) {
                    throw new FileFormatException(weightsFile, "key '" + key + "' is not a LoRA weight; expected "
                            + PeftKeys.SAVED_PREFIX + "<module>.lora_A.weight or .lora_B.weight");
                }
                if (firstKey == null) {
                    firstKey = key;
                    adapterName = m.adapterName();
                } else if (!Objects.equals(adapterName, m.adapterName())) {
                    throw new FileFormatException(weightsFile, "key '" + key + "' names a different adapter than key '"
                            + firstKey + "'; one adapter per file");
                }
                String module = m.module();
                if (module.isBlank()) {
                    throw new FileFormatException(weightsFile, "key '" + key + "' has a blank module path");
                }
                boolean isA = m.factor() == PeftKeys.Factor.A;
                String dtype = file.dtype(key);
                if (!SafetensorsDtype.parse(dtype).isFloatingPoint()) {
                    throw new FileFormatException(weightsFile, "key '" + key + "' has dtype " + dtype
                            + "; LoRA weights are F16, BF16, F32 or F64");
                }
                long[] shape = file.shape(key);
                if (shape.length != 2 || (isA ? shape[0] : shape[1]) != rank) {
                    throw new FileFormatException(weightsFile, "key '" + key + "' has shape " + Arrays.toString(shape)
                            + " but r = " + rank + " needs " + (isA ? "lora_A [r, in]" : "lora_B [out, r]"));
                }
                INDArray weight = file.get(key);   // F16/BF16 widened to FLOAT
                long bad = TensorBytes.firstNonFinite(weight);
                if (bad >= 0) {
                    // Applied or merged, one NaN spreads to every output; refuse it here, by name.
                    throw new FileFormatException(weightsFile, "key '" + key + "' holds " + weight.reshape(weight.length()).getDouble(bad)
                            + " at element " + TensorBytes.position(bad, shape) + " of " + Arrays.toString(shape)
                            + "; LoRA weights must be finite (the training run that wrote them diverged?)");
                }
                (isA ? loraA : loraB).put(module, weight);
            }
            if (firstKey == null) {
                throw new FileFormatException(weightsFile, "no LoRA weights in the file");
            }
            for (String module : loraA.keySet()) {
                if (!loraB.containsKey(module)) {
                    throw new FileFormatException(weightsFile, "key '" + key(module, "A", adapterName)
                            + "' has no matching '" + key(module, "B", adapterName) + "'");
                }
            }
            for (String module : loraB.keySet()) {
                if (!loraA.containsKey(module)) {
                    throw new FileFormatException(weightsFile, "key '" + key(module, "B", adapterName)
                            + "' has no matching '" + key(module, "A", adapterName) + "'");
                }
            }
        }
    }

    private static String key(String module, String ab, String adapterName) {
        return PeftKeys.saved(module, PeftKeys.Factor.valueOf(ab), adapterName);
    }

    private static String loraAKey(String module) {
        return PeftKeys.saved(module, PeftKeys.Factor.A);
    }

    private static String loraBKey(String module) {
        return PeftKeys.saved(module, PeftKeys.Factor.B);
    }

    // ---------------------------------------------------------------------------------------------
    // Apply

    /**
     * Attaches the adapter to the layers it names, as a new adapter {@code adapterName} on each
     * (weights copied; the first adapter on a layer becomes its active one, as
     * {@link LoraLinear#addAdapter} does). Everything is checked before any layer changes, so a
     * refused adapter leaves the model as it was.
     *
     * <p>Layers the adapter does not name are left alone. That matches PEFT for the default
     * initialisation, where a module without saved weights would start with B = 0, no change.
     *
     * @param layersByModulePath the model's layers by dotted module path, as in the adapter
     * @throws IllegalArgumentException for a module path with no layer, a lora_A or lora_B whose shape
     *                                  does not fit its layer ([r, in] and [out, r]; the message names
     *                                  the file key and both shapes), or a layer that already has an
     *                                  adapter of that name
     */
    public static void apply(PeftAdapter adapter, Map<String, LoraLinear> layersByModulePath, String adapterName) {
        Objects.requireNonNull(adapter, "adapter");
        Objects.requireNonNull(layersByModulePath, "layersByModulePath");
        Objects.requireNonNull(adapterName, "adapterName");
        long r = adapter.config().rank();
        for (String module : adapter.loraA().keySet()) {
            LoraLinear layer = layersByModulePath.get(module);
            if (layer == null) {
                throw new IllegalArgumentException("key '" + loraAKey(module) + "': the model has no layer '" + module
                        + "' (" + layersByModulePath.size() + " layers" + sample(layersByModulePath.keySet()) + ")");
            }
            if (r > Math.min(layer.inFeatures(), layer.outFeatures())) {
                throw new IllegalArgumentException("module '" + module + "': rank r = " + r + " exceeds the layer's smaller dimension min(out "
                        + layer.outFeatures() + ", in " + layer.inFeatures() + ") = " + Math.min(layer.inFeatures(), layer.outFeatures())
                        + " (weight [" + layer.outFeatures() + ", " + layer.inFeatures() + "])");
            }
            checkShape(loraAKey(module), adapter.loraA().get(module), new long[]{r, layer.inFeatures()}, module, layer, "[r, in]");
            checkShape(loraBKey(module), adapter.loraB().get(module), new long[]{layer.outFeatures(), r}, module, layer, "[out, r]");
            for (String ab : new String[]{"A", "B"}) {
                INDArray w = ab.equals("A") ? adapter.loraA().get(module) : adapter.loraB().get(module);
                long bad = firstNonFinite(w);
                if (bad >= 0) {
                    throw new IllegalArgumentException("key '" + key(module, ab, null) + "' holds "
                            + w.reshape(w.length()).getDouble(bad) + " at element " + TensorBytes.position(bad, w.shape())
                            + " of " + Arrays.toString(w.shape()) + "; LoRA weights must be finite");
                }
            }
            if (layer.adapterNames().contains(adapterName)) {
                throw new IllegalArgumentException("layer '" + module + "' already has an adapter named '" + adapterName + "'");
            }
        }
        for (String module : adapter.loraA().keySet()) {
            layersByModulePath.get(module).addAdapter(adapterName, adapter.config(),
                    adapter.loraA().get(module), adapter.loraB().get(module));
        }
    }

    private static long firstNonFinite(INDArray w) {
        try {
            return TensorBytes.firstNonFinite(w);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);   // the visitor reads memory, not a file
        }
    }

    private static void checkShape(String key, INDArray weight, long[] needed, String module, LoraLinear layer, String form) {
        if (!Arrays.equals(weight.shape(), needed)) {
            throw new IllegalArgumentException("key '" + key + "' has shape " + Arrays.toString(weight.shape())
                    + " but layer '" + module + "' (in " + layer.inFeatures() + ", out " + layer.outFeatures()
                    + ") needs " + form + " = " + Arrays.toString(needed));
        }
    }

    private static String sample(Set<String> paths) {
        if (paths.isEmpty()) {
            return "";
        }
        List<String> first = new ArrayList<>(new TreeSet<>(paths)).subList(0, Math.min(3, paths.size()));
        return ", e.g. " + first;
    }

    // ---------------------------------------------------------------------------------------------
    // Save

    /**
     * Saves the adapters of a model (one {@link LoraAdapter} per module path, e.g. collected from its
     * {@link LoraLinear} layers) as a PEFT adapter directory. See {@link #save(Path, PeftAdapter, Map)}.
     *
     * @throws IllegalArgumentException when an adapter's rank or scaling differs from {@code config}'s
     */
    public static void save(Path dir, LoraConfig config, Map<String, LoraAdapter> adaptersByModulePath,
                            String baseModelNameOrPath, Map<String, String> metadata) throws IOException {
        Objects.requireNonNull(config, "config");
        Map<String, INDArray> a = new TreeMap<>();
        Map<String, INDArray> b = new TreeMap<>();
        for (Map.Entry<String, LoraAdapter> e : adaptersByModulePath.entrySet()) {
            LoraAdapter adapter = e.getValue();
            if (adapter.rank() != config.rank() || Double.compare(adapter.scaling(), config.scaling()) != 0) {
                throw new IllegalArgumentException("module '" + e.getKey() + "': adapter '" + adapter.name() + "' has rank "
                        + adapter.rank() + " and scaling " + adapter.scaling() + " but the config has rank "
                        + config.rank() + " and scaling " + config.scaling());
            }
            a.put(e.getKey(), adapter.a());
            b.put(e.getKey(), adapter.b());
        }
        save(dir, new PeftAdapter(config, baseModelNameOrPath, a, b), metadata);
    }

    /**
     * Saves an adapter as PEFT's {@code save_pretrained} does: {@code adapter_config.json} and
     * {@code adapter_model.safetensors} (F32) in {@code dir}, created if needed. Other files in the
     * directory are left alone.
     *
     * <p>Both files are written in full to temporary files and forced to disk before either is
     * renamed into place, so a failed save leaves the previous adapter intact. (Only a crash
     * between the two renames, microseconds apart, could pair new weights with the old config.)
     *
     * <p>{@link LoraAdapter#multiplier()} is an inference-time setting and is not saved.
     *
     * @param metadata extra safetensors metadata (provenance: library version, seed, data hash);
     *                 {@code format} is always {@code pt}, as transformers requires
     * @throws IllegalArgumentException before anything is written, for a module path the config's
     *                                  target_modules and layers_to_transform do not match (PEFT would
     *                                  not load its weights), or a metadata {@code format} other than pt
     */
    public static void save(Path dir, PeftAdapter adapter, Map<String, String> metadata) throws IOException {
        save(dir, adapter, metadata, i -> { });
    }

    /** The save, with a hook run after each tensor is written so tests can make it fail midway. */
    static void save(Path dir, PeftAdapter adapter, Map<String, String> metadata, IntConsumer afterTensor) throws IOException {
        Objects.requireNonNull(adapter, "adapter");
        LoraConfig config = adapter.config();
        for (String module : adapter.loraA().keySet()) {
            if (!config.matches(module)) {
                throw new IllegalArgumentException(dir + ": module '" + module + "' is not matched by target_modules "
                        + config.targetModules() + (config.layersToTransform().isEmpty() ? ""
                        : " and layers_to_transform " + config.layersToTransform())
                        + "; PEFT would not load its weights");
            }
        }
        Map<String, String> meta = new TreeMap<>();
        if (metadata != null) {
            meta.putAll(metadata);
        }
        String format = meta.put("format", "pt");
        if (format != null && !format.equals("pt")) {
            throw new IllegalArgumentException(dir + ": metadata format must be \"pt\" for PEFT, got \"" + format + "\"");
        }
        Map<String, INDArray> tensors = new TreeMap<>();
        for (String module : adapter.loraA().keySet()) {
            tensors.put(loraAKey(module), adapter.loraA().get(module));
            tensors.put(loraBKey(module), adapter.loraB().get(module));
        }
        byte[] configJson = PythonJson.dumps(configMap(adapter)).getBytes(StandardCharsets.UTF_8);

        Files.createDirectories(dir);
        Path weightsFile = dir.resolve(WEIGHTS_FILE);
        Path configFile = dir.resolve(CONFIG_FILE);
        Path weightsTemp = Safetensors.writeTemp(weightsFile, tensors, meta, DataType.FLOAT, afterTensor);
        Path configTemp;
        try {
            configTemp = AtomicFiles.writeTemp(configFile, configJson);
        } catch (IOException | RuntimeException | Error e) {
            AtomicFiles.deleteQuietly(weightsTemp, e);
            throw e;
        }
        try {
            AtomicFiles.commit(weightsTemp, weightsFile);
        } catch (IOException | RuntimeException e) {
            AtomicFiles.deleteQuietly(configTemp, e);
            throw e;
        }
        AtomicFiles.commit(configTemp, configFile);
        LOG.debug("saved {} LoRA modules to {}", adapter.loraA().size(), dir);
    }

    /**
     * The fields of PEFT's LoraConfig as {@code save_pretrained} writes them. The set is PEFT 0.14's
     * (late 2024): every PEFT since reads it without a warning, and newer PEFT fills the fields it
     * added since (CorDA, QA-LoRA, target_parameters, ...) with their defaults, which is what lora4j
     * means. Writing those newer keys would only make older PEFT warn about unknown keys.
     */
    static Map<String, Object> configMap(PeftAdapter adapter) {
        LoraConfig c = adapter.config();
        Map<String, Object> m = new TreeMap<>();
        m.put("alpha_pattern", Map.of());
        m.put("auto_mapping", null);
        m.put("base_model_name_or_path", adapter.baseModelNameOrPath());
        m.put("bias", "none");
        m.put("eva_config", null);
        m.put("exclude_modules", null);
        m.put("fan_in_fan_out", false);
        m.put("inference_mode", true);
        m.put("init_lora_weights", switch (c.init()) {
            case DEFAULT -> true;
            case RANDOM -> false;
            default -> c.init().peftName();
        });
        m.put("layer_replication", null);
        m.put("layers_pattern", null);
        m.put("layers_to_transform", c.layersToTransform().isEmpty() ? null : c.layersToTransform());
        m.put("loftq_config", Map.of());
        // PEFT users write lora_alpha as an int; keep 16 as 16, not 16.0.
        m.put("lora_alpha", c.alpha() == Math.rint(c.alpha()) && Math.abs(c.alpha()) < 1e15 ? (Object) (long) c.alpha() : c.alpha());
        m.put("lora_bias", false);
        m.put("lora_dropout", c.dropout());
        m.put("megatron_config", null);
        m.put("megatron_core", "megatron.core");
        m.put("modules_to_save", null);
        m.put("peft_type", "LORA");
        m.put("r", c.rank());
        m.put("rank_pattern", Map.of());
        m.put("revision", null);
        m.put("target_modules", c.targetModules());
        m.put("task_type", "CAUSAL_LM");
        m.put("use_dora", false);
        m.put("use_rslora", c.useRslora());
        return m;
    }

    /**
     * JSON as Python's {@code json.dumps(obj, indent=2, sort_keys=True)} formats it (PEFT's
     * adapter_config.json), so a lora4j-written config diffs cleanly against a PEFT-written one.
     */
    static final class PythonJson {
        private PythonJson() {
        }

        static String dumps(Object value) {
            StringBuilder out = new StringBuilder();
            write(out, value, 0);
            return out.toString();
        }

        private static void write(StringBuilder out, Object value, int depth) {
            if (value == null) {
                out.append("null");
            } else if (value instanceof Boolean || value instanceof Integer || value instanceof Long) {
                out.append(value);
            } else if (value instanceof Double d) {
                if (!Double.isFinite(d)) {
                    throw new IllegalArgumentException("JSON has no " + d);
                }
                out.append(d);
            } else if (value instanceof String s) {
                quote(out, s);
            } else if (value instanceof Map<?, ?> map) {
                if (map.isEmpty()) {
                    out.append("{}");
                    return;
                }
                out.append('{');
                Iterator<? extends Map.Entry<?, ?>> it = new TreeMap<>(map).entrySet().iterator();
                while (it.hasNext()) {
                    Map.Entry<?, ?> e = it.next();
                    newline(out, depth + 1);
                    quote(out, (String) e.getKey());
                    out.append(": ");
                    write(out, e.getValue(), depth + 1);
                    if (it.hasNext()) {
                        out.append(',');
                    }
                }
                newline(out, depth);
                out.append('}');
            } else if (value instanceof List<?> list) {
                if (list.isEmpty()) {
                    out.append("[]");
                    return;
                }
                out.append('[');
                for (int i = 0; i < list.size(); i++) {
                    newline(out, depth + 1);
                    write(out, list.get(i), depth + 1);
                    if (i + 1 < list.size()) {
                        out.append(',');
                    }
                }
                newline(out, depth);
                out.append(']');
            } else {
                throw new IllegalArgumentException("cannot write " + value.getClass() + " as JSON");
            }
        }

        private static void newline(StringBuilder out, int depth) {
            out.append('\n');
            out.append("  ".repeat(depth));
        }

        /** Python's default ensure_ascii=True: everything outside printable ASCII as a \\u escape. */
        private static void quote(StringBuilder out, String s) {
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    case '\b' -> out.append("\\b");
                    case '\f' -> out.append("\\f");
                    default -> {
                        if (c < 0x20 || c > 0x7E) {
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                    }
                }
            }
            out.append('"');
        }
    }
}

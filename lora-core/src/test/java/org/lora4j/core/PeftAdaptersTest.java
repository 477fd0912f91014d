package org.lora4j.core;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * PEFT interop, against fixtures made by PyTorch (src/test/resources/peft/make_peft_fixture.py) and
 * checked the other way by check_lora4j_adapter.py.
 */
class PeftAdaptersTest {
    private static final String DOWN = "model.layers.0.mlp.down_proj";
    private static final String Q = "model.layers.1.self_attn.q_proj";
    private static final String UP = "model.layers.1.mlp.up_proj";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    // ---------------------------------------------------------------------------------------------
    // Python -> lora4j

    @Test
    void loadsAnAdapterSavedInPeftsLayout() throws Exception {
        PeftAdapter adapter = PeftAdapters.load(fixture("adapter"));
        LoraConfig c = adapter.config();
        assertEquals(2, c.rank());
        assertEquals(4.0, c.alpha());
        assertEquals(0.05, c.dropout());
        assertFalse(c.useRslora());
        assertEquals(LoraConfig.Init.DEFAULT, c.init());
        assertEquals(List.of("q_proj", "down_proj"), c.targetModules());
        assertEquals(List.of(), c.layersToTransform());
        assertEquals(2.0, c.scaling());
        assertEquals("lora4j-test/tiny-llama", adapter.baseModelNameOrPath());
        assertEquals(List.of(DOWN, Q), List.copyOf(adapter.loraA().keySet()));
        assertEquals(adapter.loraA().keySet(), adapter.loraB().keySet());
        assertArrayEquals(new long[]{2, 8}, adapter.loraA().get(DOWN).shape());
        assertArrayEquals(new long[]{6, 2}, adapter.loraB().get(DOWN).shape());
        assertArrayEquals(new long[]{2, 6}, adapter.loraA().get(Q).shape());
        assertArrayEquals(new long[]{6, 2}, adapter.loraB().get(Q).shape());
        try (SafetensorsFile raw = SafetensorsFile.open(fixture("adapter").resolve(PeftAdapters.WEIGHTS_FILE))) {
            SafetensorsTest.assertSameBytes(raw.get("base_model.model." + Q + ".lora_B.weight"), adapter.loraB().get(Q), "B");
            SafetensorsTest.assertSameBytes(raw.get("base_model.model." + DOWN + ".lora_A.weight"), adapter.loraA().get(DOWN), "A");
        }
    }

    @Test
    void loadsRsloraWithBf16WeightsAndLayersToTransform() throws Exception {
        PeftAdapter adapter = PeftAdapters.load(fixture("adapter_rslora"));
        LoraConfig c = adapter.config();
        assertEquals(4, c.rank());
        assertTrue(c.useRslora());
        assertEquals(4.0, c.scaling(), "8 / sqrt(4); plain LoRA would give 2");
        assertEquals(List.of(1), c.layersToTransform());
        assertEquals(0.0, c.dropout());
        assertEquals(DataType.FLOAT, adapter.loraA().get(UP).dataType(), "BF16 widened to FLOAT");
        assertArrayEquals(new long[]{8, 4}, adapter.loraB().get(UP).shape());
    }

    /** The forward of lora4j's layer on PEFT's weights equals PyTorch's, x Wᵀ + b + s (x Aᵀ) Bᵀ. */
    @Test
    void forwardWithALoadedAdapterMatchesPyTorch() throws Exception {
        try (SafetensorsFile ref = SafetensorsFile.open(fixture("reference.safetensors"))) {
            PeftAdapter plain = PeftAdapters.load(fixture("adapter"));
            Map<String, LoraLinear> layers = layers(ref, DOWN, Q, UP);
            PeftAdapters.apply(plain, layers, "default");
            for (String module : List.of(DOWN, Q)) {
                double err = relativeError(forward(layers.get(module), ref.get("input." + module)), ref.get("output." + module));
                assertTrue(err < 1e-5, module + ": relative error " + err);
            }
            assertTrue(layers.get(UP).adapterNames().isEmpty(), "a layer the adapter does not name is left alone");

            PeftAdapters.apply(PeftAdapters.load(fixture("adapter_rslora")), layers, "rs");
            double err = relativeError(forward(layers.get(UP), ref.get("input." + UP)), ref.get("output_rslora." + UP));
            assertTrue(err < 1e-5, "rsLoRA: relative error " + err);

            // Not vacuous: without the adapter the output is far from PyTorch's.
            layers.get(Q).setAdaptersEnabled(false);
            assertTrue(relativeError(forward(layers.get(Q), ref.get("input." + Q)), ref.get("output." + Q)) > 0.1);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // lora4j -> Python

    @Test
    void resavingAPeftAdapterReproducesPeftsFilesByteForByte() throws Exception {
        for (String name : List.of("adapter", "adapter_rslora")) {
            Path out = tmp.resolve(name);
            PeftAdapters.save(out, PeftAdapters.load(fixture(name)), Map.of());
            assertEquals(Files.readString(fixture(name).resolve(PeftAdapters.CONFIG_FILE)),
                    Files.readString(out.resolve(PeftAdapters.CONFIG_FILE)), name);
        }
        // F32 weights come out identical; the rsLoRA fixture's BF16 weights are saved as F32.
        assertArrayEquals(Files.readAllBytes(fixture("adapter").resolve(PeftAdapters.WEIGHTS_FILE)),
                Files.readAllBytes(tmp.resolve("adapter").resolve(PeftAdapters.WEIGHTS_FILE)));
        try (SafetensorsFile f = SafetensorsFile.open(tmp.resolve("adapter_rslora").resolve(PeftAdapters.WEIGHTS_FILE))) {
            assertEquals("F32", f.dtype("base_model.model." + UP + ".lora_A.weight"));
        }
    }

    /**
     * Saves the adapters of lora4j layers and checks the files have the structure of the PyTorch-made
     * fixture: the same config text, the same safetensors header (keys, dtypes, shapes, offsets,
     * metadata). Leaves the adapter and a forward reference in target/peft-interop for
     * check_lora4j_adapter.py, and runs that script when a Python with torch is installed.
     */
    @Test
    void savedAdapterHasPeftsStructureAndPythonAgrees() throws Exception {
        LoraConfig config = new LoraConfig(2, 4, 0.05, false, LoraConfig.Init.DEFAULT, List.of("q_proj", "down_proj"), List.of());
        // [out, in]; sorted, so each layer gets the same seed on every run.
        Map<String, long[]> dims = new TreeMap<>(Map.of(DOWN, new long[]{6, 8}, Q, new long[]{6, 6}));
        Map<String, LoraLinear> layers = new TreeMap<>();
        Map<String, LoraAdapter> adapters = new TreeMap<>();
        long seed = 11;
        for (Map.Entry<String, long[]> e : dims.entrySet()) {
            Nd4j.getRandom().setSeed(seed++);
            LoraLinear layer = new LoraLinear(e.getKey(), Nd4j.randn(DataType.FLOAT, e.getValue()), Nd4j.randn(DataType.FLOAT, e.getValue()[0]));
            // RANDOM init: B non-zero, so the adapter term shows in the forward.
            adapters.put(e.getKey(), layer.addAdapter("default", config.withInit(LoraConfig.Init.RANDOM), seed++));
            layers.put(e.getKey(), layer);
        }
        // The adapters were made with RANDOM init; the saved config is the plain one, like PEFT's after training.
        Path out = Path.of("target", "peft-interop");
        Path adapterDir = out.resolve("adapter");
        PeftAdapters.save(adapterDir, config, adapters, "lora4j-test/tiny-llama", Map.of("lora4j.test", "PeftAdaptersTest"));

        assertEquals(Files.readString(fixture("adapter").resolve(PeftAdapters.CONFIG_FILE)),
                Files.readString(adapterDir.resolve(PeftAdapters.CONFIG_FILE)));
        JsonNode ours = header(adapterDir.resolve(PeftAdapters.WEIGHTS_FILE));
        JsonNode peft = header(fixture("adapter").resolve(PeftAdapters.WEIGHTS_FILE));
        assertEquals("{\"format\":\"pt\",\"lora4j.test\":\"PeftAdaptersTest\"}", ours.get("__metadata__").toString());
        ((ObjectNode) ours).remove("__metadata__");
        ((ObjectNode) peft).remove("__metadata__");
        assertEquals(peft, ours, "keys, dtypes, shapes and data_offsets");

        // A forward reference for the Python check: base weights, input and lora4j's output per layer.
        Map<String, INDArray> reference = new TreeMap<>();
        for (Map.Entry<String, LoraLinear> e : layers.entrySet()) {
            Nd4j.getRandom().setSeed(seed++);
            INDArray x = Nd4j.randn(DataType.FLOAT, 5, e.getValue().inFeatures());
            reference.put("base." + e.getKey() + ".weight", e.getValue().weight());
            reference.put("base." + e.getKey() + ".bias", e.getValue().bias());
            reference.put("input." + e.getKey(), x);
            reference.put("output." + e.getKey(), forward(e.getValue(), x));
        }
        Path referenceFile = out.resolve("reference.safetensors");
        Safetensors.write(referenceFile, reference, Map.of("made_by", "PeftAdaptersTest"));

        // Round trip through our own loader, and the loaded weights reproduce the layer outputs.
        PeftAdapter loaded = PeftAdapters.load(adapterDir);
        assertEquals(config, loaded.config());
        try (SafetensorsFile ref = SafetensorsFile.open(referenceFile)) {
            Map<String, LoraLinear> fresh = layers(ref, DOWN, Q);
            PeftAdapters.apply(loaded, fresh, "loaded");
            for (String module : List.of(DOWN, Q)) {
                assertTrue(relativeError(forward(fresh.get(module), ref.get("input." + module)), ref.get("output." + module)) < 1e-6);
            }
        }

        Path script = fixture("check_lora4j_adapter.py");
        if (!pythonWithTorch()) {
            // Skipped on a developer machine without torch, but never on CI (.ci/run installs python3-torch).
            if (System.getenv("CI") != null) {
                org.junit.jupiter.api.Assertions.fail("CI is set and /usr/bin/python3 has no torch: the Python side of"
                        + " the PEFT interop check cannot run (.ci/run installs Debian's python3-torch)");
            }
            assumeTrue(false, "no /usr/bin/python3 with torch: skipping the Python side");
        }
        Process p = new ProcessBuilder("/usr/bin/python3", script.toString(), adapterDir.toString(), referenceFile.toString())
                .redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), output);
        assertTrue(output.contains("OK: PEFT would load this adapter"), output);
    }

    private static boolean pythonWithTorch() throws InterruptedException {
        if (!Files.isExecutable(Path.of("/usr/bin/python3"))) {
            return false;
        }
        try {
            Process p = new ProcessBuilder("/usr/bin/python3", "-c", "import torch").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Refusals on load

    static Stream<Arguments> badConfigs() {
        return Stream.of(
                Arguments.of("peft_type", (Consumer<ObjectNode>) c -> c.put("peft_type", "PREFIX_TUNING"), List.of("peft_type", "PREFIX_TUNING")),
                Arguments.of("no peft_type", (Consumer<ObjectNode>) c -> c.remove("peft_type"), List.of("peft_type")),
                Arguments.of("no r", (Consumer<ObjectNode>) c -> c.remove("r"), List.of("r (the LoRA rank) is missing")),
                Arguments.of("r 0", (Consumer<ObjectNode>) c -> c.put("r", 0), List.of("r must be >= 1, got 0")),
                Arguments.of("r fractional", (Consumer<ObjectNode>) c -> c.put("r", 2.5), List.of("r must be an integer", "2.5")),
                Arguments.of("no lora_alpha", (Consumer<ObjectNode>) c -> c.remove("lora_alpha"), List.of("lora_alpha is missing")),
                Arguments.of("lora_alpha 0", (Consumer<ObjectNode>) c -> c.put("lora_alpha", 0), List.of("lora_alpha", "0")),
                Arguments.of("fan_in_fan_out", (Consumer<ObjectNode>) c -> c.put("fan_in_fan_out", true), List.of("fan_in_fan_out = true", "Conv1D")),
                Arguments.of("use_dora", (Consumer<ObjectNode>) c -> c.put("use_dora", true), List.of("use_dora = true")),
                Arguments.of("bias all", (Consumer<ObjectNode>) c -> c.put("bias", "all"), List.of("bias = \"all\"")),
                Arguments.of("rank_pattern", (Consumer<ObjectNode>) c -> c.putObject("rank_pattern").put("q_proj", 4), List.of("rank_pattern", "q_proj")),
                Arguments.of("modules_to_save", (Consumer<ObjectNode>) c -> c.putArray("modules_to_save").add("lm_head"), List.of("modules_to_save", "lm_head")),
                Arguments.of("init olora", (Consumer<ObjectNode>) c -> c.put("init_lora_weights", "olora"), List.of("init_lora_weights", "olora")),
                Arguments.of("layers_pattern", (Consumer<ObjectNode>) c -> {
                    c.putArray("layers_to_transform").add(0);
                    c.put("layers_pattern", "decoder");
                }, List.of("layers_pattern", "decoder")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badConfigs")
    void refusesAConfigItCannotHonourNamingTheKey(String name, Consumer<ObjectNode> edit, List<String> fragments) throws Exception {
        Path dir = copyFixture("adapter");
        editConfig(dir, edit);
        FileFormatException e = assertThrows(FileFormatException.class, () -> PeftAdapters.load(dir));
        assertEquals(dir.resolve(PeftAdapters.CONFIG_FILE), e.file());
        assertTrue(e.getMessage().startsWith(dir.resolve(PeftAdapters.CONFIG_FILE).toString()), e.getMessage());
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), "'" + fragment + "' missing from: " + e.getMessage());
        }
    }

    @Test
    void refusesALoraAWithoutItsLoraBNamingTheKey() throws Exception {
        Path dir = copyFixture("adapter");
        Map<String, INDArray> w = weights(dir);
        w.remove("base_model.model." + Q + ".lora_B.weight");
        writeWeights(dir, w);
        assertWeightsError(dir, "'base_model.model." + Q + ".lora_A.weight' has no matching 'base_model.model." + Q + ".lora_B.weight'");

        w = weights(copyFixture("adapter", "adapter2"));
        w.remove("base_model.model." + DOWN + ".lora_A.weight");
        writeWeights(tmp.resolve("adapter2"), w);
        assertWeightsError(tmp.resolve("adapter2"), "'base_model.model." + DOWN + ".lora_B.weight' has no matching");
    }

    @Test
    void refusesWeightsWhoseRankDisagreesWithR() throws Exception {
        Path dir = copyFixture("adapter");
        Map<String, INDArray> w = weights(dir);
        w.put("base_model.model." + Q + ".lora_A.weight", Nd4j.ones(DataType.FLOAT, 3, 6));
        writeWeights(dir, w);
        assertWeightsError(dir, "'base_model.model." + Q + ".lora_A.weight' has shape [3, 6] but r = 2");
    }

    @Test
    void refusesTensorsThatAreNotLoraWeights() throws Exception {
        Path dir = copyFixture("adapter");
        Map<String, INDArray> w = weights(dir);
        w.put("base_model.model.lm_head.weight", Nd4j.ones(DataType.FLOAT, 4, 6));
        writeWeights(dir, w);
        assertWeightsError(dir, "'base_model.model.lm_head.weight' is not a LoRA weight");

        Path ints = copyFixture("adapter", "ints");
        Map<String, INDArray> wi = weights(ints);
        wi.put("base_model.model." + Q + ".lora_A.weight", Nd4j.ones(DataType.LONG, 2, 6));
        writeWeights(ints, wi);
        assertWeightsError(ints, "dtype I64");
    }

    @Test
    void acceptsPeftsInMemoryKeysButNotTwoAdapterNames() throws Exception {
        Path dir = copyFixture("adapter");
        Map<String, INDArray> named = new HashMap<>();
        weights(dir).forEach((k, v) -> named.put(k.replace(".weight", ".default.weight"), v));
        writeWeights(dir, named);
        assertEquals(List.of(DOWN, Q), List.copyOf(PeftAdapters.load(dir).loraA().keySet()));

        named.put("base_model.model." + Q + ".lora_A.other.weight", named.remove("base_model.model." + Q + ".lora_A.default.weight"));
        writeWeights(dir, named);
        assertWeightsError(dir, "names a different adapter");
    }

    @Test
    void ignoresUnknownConfigKeysAndTurnsARegexTargetIntoModulePaths() throws Exception {
        Path dir = copyFixture("adapter");
        editConfig(dir, c -> {
            c.put("some_future_option", 3);
            c.putObject("arrow_config");
            c.put("target_modules", ".*\\.(q_proj|down_proj)");
            c.put("layers_to_transform", 1);
        });
        PeftAdapter adapter = PeftAdapters.load(dir);
        assertEquals(List.of(DOWN, Q), adapter.config().targetModules());
        assertEquals(List.of(1), adapter.config().layersToTransform());
    }

    @Test
    void namesThePickleWhenOnlyAdapterModelBinExists() throws Exception {
        Path dir = copyFixture("adapter");
        Files.delete(dir.resolve(PeftAdapters.WEIGHTS_FILE));
        NoSuchFileException missing = assertThrows(NoSuchFileException.class, () -> PeftAdapters.load(dir));
        assertMessageHas(missing, dir.resolve(PeftAdapters.WEIGHTS_FILE) + ": missing from the adapter directory (it holds "
                + PeftAdapters.CONFIG_FILE + ")", "a PEFT adapter directory", "holds adapter_config.json");
        Files.write(dir.resolve("adapter_model.bin"), new byte[]{1});
        FileFormatException e = assertThrows(FileFormatException.class, () -> PeftAdapters.load(dir));
        assertTrue(e.getMessage().contains("adapter_model.bin") && e.getMessage().contains("safe_serialization"), e.getMessage());
    }

    /** Not the bare path: what is missing, and what a PEFT adapter directory holds. */
    @Test
    void namesWhatIsMissingFromAnAdapterDirectory() throws Exception {
        Path nowhere = tmp.resolve("no-such-adapter");
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> PeftAdapters.load(nowhere));
        assertMessageHas(e, nowhere + ": no such adapter directory", "adapter_config.json (the LoRA settings)",
                "adapter_model.safetensors (the lora_A and lora_B weights)");

        Path dir = copyFixture("adapter");
        Files.delete(dir.resolve(PeftAdapters.CONFIG_FILE));
        Files.writeString(dir.resolve("README.md"), "card");
        e = assertThrows(NoSuchFileException.class, () -> PeftAdapters.load(dir));
        assertMessageHas(e, dir.resolve(PeftAdapters.CONFIG_FILE) + ": missing from the adapter directory (it holds README.md, "
                + PeftAdapters.WEIGHTS_FILE + ")", "a PEFT adapter directory");

        Path empty = Files.createDirectories(tmp.resolve("empty"));
        e = assertThrows(NoSuchFileException.class, () -> PeftAdapters.load(empty));
        assertMessageHas(e, "(it is empty)");

        Path configDir = copyFixture("adapter", "config-is-a-directory");
        Files.delete(configDir.resolve(PeftAdapters.CONFIG_FILE));
        Files.createDirectories(configDir.resolve(PeftAdapters.CONFIG_FILE));
        FileFormatException d = assertThrows(FileFormatException.class, () -> PeftAdapters.load(configDir));
        assertMessageHas(d, configDir.resolve(PeftAdapters.CONFIG_FILE) + ": is a directory, not a JSON file");

        Path hugeConfig = copyFixture("adapter", "huge-config");
        try (java.io.RandomAccessFile raf = new java.io.RandomAccessFile(hugeConfig.resolve(PeftAdapters.CONFIG_FILE).toFile(), "rw")) {
            raf.setLength(PeftAdapters.MAX_CONFIG_BYTES + 1);   // sparse: costs no disk
        }
        FileFormatException big = assertThrows(FileFormatException.class, () -> PeftAdapters.load(hugeConfig));
        assertMessageHas(big, "is " + (PeftAdapters.MAX_CONFIG_BYTES + 1) + " bytes; an adapter config is a few KB");

        Path aFile = Files.writeString(tmp.resolve("adapter.safetensors"), "x");
        FileFormatException f = assertThrows(FileFormatException.class, () -> PeftAdapters.load(aFile));
        assertEquals(aFile, f.file());
        assertMessageHas(f, aFile + ": is a file, not an adapter directory", "adapter_model.safetensors");
    }

    /** One NaN in an adapter spreads to every output of a merged model: refused on load, by key and element. */
    @Test
    void refusesNonFiniteWeightsNamingTheKeyAndTheFirstBadElement() throws Exception {
        Path dir = copyFixture("adapter");
        Map<String, INDArray> w = weights(dir);
        INDArray b = w.get("base_model.model." + Q + ".lora_B.weight").dup();
        b.putScalar(3, 1, Float.NaN);
        b.putScalar(5, 0, Float.NaN);
        w.put("base_model.model." + Q + ".lora_B.weight", b);
        writeWeights(dir, w);
        assertWeightsError(dir, "key 'base_model.model." + Q + ".lora_B.weight' holds NaN at element [3, 1] of [6, 2]");

        for (DataType stored : new DataType[]{DataType.HALF, DataType.BFLOAT16, DataType.DOUBLE}) {
            Path typed = copyFixture("adapter", "inf_" + stored);
            Map<String, INDArray> wt = weights(typed);
            INDArray a = wt.get("base_model.model." + DOWN + ".lora_A.weight").dup();
            a.putScalar(1, 7, Double.NEGATIVE_INFINITY);
            wt.put("base_model.model." + DOWN + ".lora_A.weight", a);
            Safetensors.write(typed.resolve(PeftAdapters.WEIGHTS_FILE), wt, Map.of("format", "pt"), stored);
            assertWeightsError(typed, "key 'base_model.model." + DOWN + ".lora_A.weight' holds -Infinity at element [1, 7] of [2, 8]");
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Apply

    @Test
    void applyRefusesNonFiniteWeightsAndARankAboveTheLayersSmallerDimension() throws Exception {
        PeftAdapter loaded = PeftAdapters.load(fixture("adapter"));
        Map<String, INDArray> a = new TreeMap<>(loaded.loraA());
        INDArray nan = a.get(DOWN).dup();
        nan.putScalar(0, 4, Float.POSITIVE_INFINITY);
        a.put(DOWN, nan);
        PeftAdapter bad = new PeftAdapter(loaded.config(), null, a, loaded.loraB());
        Map<String, LoraLinear> layers = new LinkedHashMap<>();
        layers.put(DOWN, new LoraLinear(DOWN, Nd4j.ones(DataType.FLOAT, 6, 8), null));
        layers.put(Q, new LoraLinear(Q, Nd4j.ones(DataType.FLOAT, 6, 6), null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapters.apply(bad, layers, "default"));
        assertMessageHas(e, "key 'base_model.model." + DOWN + ".lora_A.weight' holds Infinity at element [0, 4] of [2, 8]");
        assertTrue(layers.get(DOWN).adapterNames().isEmpty() && layers.get(Q).adapterNames().isEmpty(), "nothing attached");

        // Rank 3 on a [2, 6] layer: the shapes fit ([3, 6] and [2, 3]) but B·A cannot have rank 3.
        LoraConfig rank3 = LoraConfig.of(3, 3, "q_proj");
        PeftAdapter wide = new PeftAdapter(rank3, null, Map.of(Q, Nd4j.ones(DataType.FLOAT, 3, 6)),
                Map.of(Q, Nd4j.ones(DataType.FLOAT, 2, 3)));
        Map<String, LoraLinear> narrow = Map.of(Q, new LoraLinear(Q, Nd4j.ones(DataType.FLOAT, 2, 6), null));
        e = assertThrows(IllegalArgumentException.class, () -> PeftAdapters.apply(wide, narrow, "default"));
        assertMessageHas(e, "module '" + Q + "': rank r = 3 exceeds the layer's smaller dimension min(out 2, in 6) = 2 (weight [2, 6])");
        assertTrue(narrow.get(Q).adapterNames().isEmpty());
    }

    @Test
    void applyRefusesAMissingLayerBeforeChangingAnything() throws Exception {
        PeftAdapter adapter = PeftAdapters.load(fixture("adapter"));
        Map<String, LoraLinear> layers = new LinkedHashMap<>();
        layers.put(DOWN, new LoraLinear(DOWN, Nd4j.ones(DataType.FLOAT, 6, 8), null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapters.apply(adapter, layers, "default"));
        assertTrue(e.getMessage().contains("'base_model.model." + Q + ".lora_A.weight'")
                && e.getMessage().contains("no layer '" + Q + "'"), e.getMessage());
        assertTrue(layers.get(DOWN).adapterNames().isEmpty(), "nothing attached");
    }

    @Test
    void applyRefusesAShapeMismatchNamingTheKeyAndBothShapes() throws Exception {
        PeftAdapter adapter = PeftAdapters.load(fixture("adapter"));
        Map<String, LoraLinear> layers = new LinkedHashMap<>();
        layers.put(DOWN, new LoraLinear(DOWN, Nd4j.ones(DataType.FLOAT, 6, 8), null));
        layers.put(Q, new LoraLinear(Q, Nd4j.ones(DataType.FLOAT, 6, 7), null));   // in 7, the adapter's A is [2, 6]
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapters.apply(adapter, layers, "default"));
        assertTrue(e.getMessage().contains("'base_model.model." + Q + ".lora_A.weight' has shape [2, 6]")
                && e.getMessage().contains("[2, 7]"), e.getMessage());
        assertTrue(layers.get(DOWN).adapterNames().isEmpty(), "checked before the first layer changed");

        layers.put(Q, new LoraLinear(Q, Nd4j.ones(DataType.FLOAT, 5, 6), null));   // out 5, B is [6, 2]
        e = assertThrows(IllegalArgumentException.class, () -> PeftAdapters.apply(adapter, layers, "default"));
        assertTrue(e.getMessage().contains("'base_model.model." + Q + ".lora_B.weight' has shape [6, 2]")
                && e.getMessage().contains("[5, 2]"), e.getMessage());

        layers.put(Q, new LoraLinear(Q, Nd4j.ones(DataType.FLOAT, 6, 6), null));
        PeftAdapters.apply(adapter, layers, "default");
        e = assertThrows(IllegalArgumentException.class, () -> PeftAdapters.apply(adapter, layers, "default"));
        assertTrue(e.getMessage().contains("already has an adapter named 'default'"), e.getMessage());
    }

    // ---------------------------------------------------------------------------------------------
    // Save

    @Test
    void aFailedSaveLeavesThePreviousAdapterIntact() throws Exception {
        Path dir = tmp.resolve("out");
        PeftAdapter first = PeftAdapters.load(fixture("adapter"));
        PeftAdapters.save(dir, first, Map.of());
        Files.writeString(dir.resolve("README.md"), "model card");
        byte[] config = Files.readAllBytes(dir.resolve(PeftAdapters.CONFIG_FILE));
        byte[] weights = Files.readAllBytes(dir.resolve(PeftAdapters.WEIGHTS_FILE));

        PeftAdapter second = PeftAdapters.load(fixture("adapter_rslora"));
        assertThrows(IllegalStateException.class, () -> PeftAdapters.save(dir, second, Map.of(), i -> {
            throw new IllegalStateException("killed after tensor " + i);
        }));
        assertArrayEquals(config, Files.readAllBytes(dir.resolve(PeftAdapters.CONFIG_FILE)));
        assertArrayEquals(weights, Files.readAllBytes(dir.resolve(PeftAdapters.WEIGHTS_FILE)));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of("README.md", PeftAdapters.CONFIG_FILE, PeftAdapters.WEIGHTS_FILE),
                    files.map(p -> p.getFileName().toString()).sorted().toList(), "no temporary files left");
        }

        PeftAdapters.save(dir, second, Map.of());
        assertEquals(4, PeftAdapters.load(dir).config().rank());
        assertEquals("model card", Files.readString(dir.resolve("README.md")));
    }

    @Test
    void saveRefusesWhatPeftWouldNotLoadBack() throws Exception {
        PeftAdapter adapter = PeftAdapters.load(fixture("adapter"));
        LoraConfig onlyQ = LoraConfig.of(2, 4, "q_proj");
        PeftAdapter mismatched = new PeftAdapter(onlyQ, null, adapter.loraA(), adapter.loraB());
        Path dir = tmp.resolve("refused");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapters.save(dir, mismatched, Map.of()));
        assertTrue(e.getMessage().contains("'" + DOWN + "'") && e.getMessage().contains("[q_proj]"), e.getMessage());

        e = assertThrows(IllegalArgumentException.class, () -> PeftAdapters.save(dir, adapter, Map.of("format", "tf")));
        assertTrue(e.getMessage().contains("\"tf\""), e.getMessage());
        assertFalse(Files.exists(dir.resolve(PeftAdapters.CONFIG_FILE)));

        LoraLinear layer = new LoraLinear(Q, Nd4j.ones(DataType.FLOAT, 6, 6), null);
        LoraAdapter rank4 = layer.addAdapter("default", LoraConfig.of(4, 4, "q_proj"), 1);
        e = assertThrows(IllegalArgumentException.class, () ->
                PeftAdapters.save(dir, LoraConfig.of(2, 4, "q_proj"), Map.of(Q, rank4), null, Map.of()));
        assertTrue(e.getMessage().contains("rank 4") && e.getMessage().contains("rank 2"), e.getMessage());
    }

    @Test
    void writesNullBaseModelAndNonDefaultInitAsPeftDoes() throws Exception {
        PeftAdapter loaded = PeftAdapters.load(fixture("adapter"));
        LoraConfig gaussian = loaded.config().withInit(LoraConfig.Init.GAUSSIAN).withRslora(true);
        Path dir = tmp.resolve("g");
        PeftAdapters.save(dir, new PeftAdapter(gaussian, null, loaded.loraA(), loaded.loraB()), null);
        JsonNode config = JSON.readTree(dir.resolve(PeftAdapters.CONFIG_FILE).toFile());
        assertTrue(config.get("base_model_name_or_path").isNull());
        assertEquals("gaussian", config.get("init_lora_weights").textValue());
        assertTrue(config.get("use_rslora").booleanValue());
        PeftAdapter back = PeftAdapters.load(dir);
        assertEquals(gaussian, back.config());
        assertNull(back.baseModelNameOrPath());
        assertEquals(Map.of("format", "pt"), metadata(dir));
    }

    @Test
    void adapterRecordChecksItsParts() {
        LoraConfig c = LoraConfig.of(2, 4, "q_proj");
        INDArray a = Nd4j.ones(DataType.FLOAT, 2, 6);
        INDArray b = Nd4j.ones(DataType.FLOAT, 6, 2);
        assertThrows(IllegalArgumentException.class, () -> new PeftAdapter(c, null, Map.of(Q, a), Map.of()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
                new PeftAdapter(c, null, Map.of(Q, Nd4j.ones(DataType.FLOAT, 3, 6)), Map.of(Q, b)));
        assertTrue(e.getMessage().contains("[3, 6]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new PeftAdapter(c, null, Map.of(), Map.of()));
        assertEquals(List.of(Q), List.copyOf(new PeftAdapter(c, null, Map.of(Q, a), Map.of(Q, b)).loraA().keySet()));
    }

    // ---------------------------------------------------------------------------------------------

    private static Path fixture(String name) throws URISyntaxException {
        return HalfFloatsTest.fixture(name);
    }

    private Path copyFixture(String name) throws Exception {
        return copyFixture(name, name);
    }

    private Path copyFixture(String name, String as) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(as));
        for (String file : List.of(PeftAdapters.CONFIG_FILE, PeftAdapters.WEIGHTS_FILE)) {
            Files.copy(fixture(name).resolve(file), dir.resolve(file));
        }
        return dir;
    }

    private static void editConfig(Path dir, Consumer<ObjectNode> edit) throws IOException {
        Path file = dir.resolve(PeftAdapters.CONFIG_FILE);
        ObjectNode config = (ObjectNode) JSON.readTree(file.toFile());
        edit.accept(config);
        Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config));
    }

    private static Map<String, INDArray> weights(Path dir) throws IOException {
        Map<String, INDArray> out = new HashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapters.WEIGHTS_FILE))) {
            for (String key : f.keys()) {
                out.put(key, f.get(key));
            }
        }
        return out;
    }

    private static Map<String, String> metadata(Path dir) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapters.WEIGHTS_FILE))) {
            return f.metadata();
        }
    }

    private static void writeWeights(Path dir, Map<String, INDArray> weights) throws IOException {
        Safetensors.write(dir.resolve(PeftAdapters.WEIGHTS_FILE), weights, Map.of("format", "pt"));
    }

    private static void assertWeightsError(Path dir, String fragment) {
        FileFormatException e = assertThrows(FileFormatException.class, () -> PeftAdapters.load(dir));
        assertEquals(dir.resolve(PeftAdapters.WEIGHTS_FILE), e.file());
        assertTrue(e.getMessage().contains(fragment), "'" + fragment + "' missing from: " + e.getMessage());
    }

    private static void assertMessageHas(Exception e, String... fragments) {
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), "'" + fragment + "' missing from: " + e.getMessage());
        }
    }

    private static JsonNode header(Path file) throws IOException {
        byte[] raw = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(raw, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return JSON.readTree(new String(raw, 8, (int) n, StandardCharsets.UTF_8));
    }

    /** Layers with the reference file's base weights and biases. */
    private static Map<String, LoraLinear> layers(SafetensorsFile ref, String... modules) {
        Map<String, LoraLinear> layers = new LinkedHashMap<>();
        for (String m : modules) {
            layers.put(m, new LoraLinear(m, ref.get("base." + m + ".weight"), ref.get("base." + m + ".bias")));
        }
        return layers;
    }

    private static INDArray forward(LoraLinear layer, INDArray x) {
        INDArray y = Nd4j.create(DataType.FLOAT, new long[]{x.size(0), layer.outFeatures()}, 'f');
        layer.forward(x, y);
        return y.dup('c');
    }

    /** ‖y − ref‖ / ‖ref‖, in double. */
    private static double relativeError(INDArray y, INDArray ref) {
        assertArrayEquals(ref.shape(), y.shape(), () -> "shape " + Arrays.toString(y.shape()));
        INDArray r = ref.castTo(DataType.DOUBLE);
        return y.castTo(DataType.DOUBLE).sub(r).norm2Number().doubleValue() / r.norm2Number().doubleValue();
    }
}

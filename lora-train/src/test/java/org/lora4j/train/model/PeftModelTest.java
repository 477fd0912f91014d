package org.lora4j.train.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.LoraLinear;
import org.lora4j.core.PeftAdapter;
import org.lora4j.core.PeftAdapters;
import org.lora4j.core.SafetensorsFile;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PeftModelTest {
    private static final int[] TOKENS = {3, 14, 15, 9, 2, 6, 5, 35};
    private static final String DOWN1 = "model.layers.1.mlp.down_proj";

    /** Float64, so merged and unmerged forwards agree to rounding, with B non-zero so adapters change the output. */
    private static DecoderModel model() {
        return DecoderModel.randomInit(DecoderModelTest.small(), 7, DataType.DOUBLE);
    }

    private static LoraConfig randomInit(String... targets) {
        return LoraConfig.of(2, 4, targets).withInit(LoraConfig.Init.RANDOM);
    }

    private static INDArray logits(DecoderModel m) {
        return m.forward(TOKENS, null, 1, TOKENS.length).dup();
    }

    private static double maxDiff(INDArray a, INDArray b) {
        return a.sub(b).amaxNumber().doubleValue();
    }

    @Test
    void addAdapterAdaptsTheMatchingLayersAndRefusesAConfigThatMatchesNone() {
        DecoderModel m = model();
        PeftModel p = new PeftModel(m);
        List<String> adapted = p.addAdapter("default", randomInit("q_proj", "down_proj").withLayersToTransform(List.of(1)), 3);
        assertEquals(List.of("model.layers.1.self_attn.q_proj", DOWN1), adapted);
        assertEquals(adapted, List.copyOf(p.activeAdapters().keySet()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> p.addAdapter("other", LoraConfig.of(1, 1, "dense_h_to_4h"), 3));
        assertTrue(e.getMessage().contains("match no layer") && e.getMessage().contains("layers are 0..2"), e.getMessage());
        assertEquals(List.of("default"), p.adapterNames(), "a refused config changes nothing");
    }

    @Test
    void seedsDoNotDependOnTheTargets() {
        PeftModel one = new PeftModel(model());
        PeftModel two = new PeftModel(model());
        one.addAdapter("default", randomInit("down_proj"), 11);
        two.addAdapter("default", randomInit("q_proj", "down_proj"), 11);
        assertEquals(one.activeAdapters().get(DOWN1).a(), two.activeAdapters().get(DOWN1).a());
    }

    @Test
    void mergeThenUnmergeRestoresTheWeightsAndMergedEqualsUnmergedOutput() {
        DecoderModel m = model();
        INDArray base = logits(m);
        INDArray w = m.parameters().get(DOWN1 + ".weight").dup();
        PeftModel p = new PeftModel(m);
        p.addAdapter("default", randomInit("q_proj", "v_proj", "down_proj"), 5);
        INDArray adapted = logits(m);
        assertTrue(maxDiff(adapted, base) > 1e-3, "the adapter changes the output");

        assertEquals(9, p.mergeAdapter());
        assertTrue(p.isMerged());
        assertTrue(maxDiff(logits(m), adapted) < 1e-10, "merged weights give the adapted output");
        assertTrue(maxDiff(m.parameters().get(DOWN1 + ".weight"), w) > 1e-3, "the base weight changed");

        IllegalStateException twice = assertThrows(IllegalStateException.class, p::mergeAdapter);
        assertTrue(twice.getMessage().contains("already merged"), twice.getMessage());

        assertEquals(9, p.unmergeAdapter());
        assertFalse(p.isMerged());
        assertTrue(maxDiff(m.parameters().get(DOWN1 + ".weight"), w) < 1e-12);
        assertTrue(maxDiff(logits(m), adapted) < 1e-10);
        IllegalStateException none = assertThrows(IllegalStateException.class, p::unmergeAdapter);
        assertEquals("no adapter is merged", none.getMessage());
    }

    @Test
    void aNonFiniteAdapterIsRefusedBeforeAnyLayerMerges() {
        DecoderModel m = model();
        PeftModel p = new PeftModel(m);
        p.addAdapter("default", randomInit("q_proj", "down_proj"), 5);
        Map<String, INDArray> before = Map.of("q", m.parameters().get("model.layers.0.self_attn.q_proj.weight").dup());
        p.activeAdapters().get("model.layers.2.mlp.down_proj").b().putScalar(0, 0, Double.NaN);
        IllegalStateException e = assertThrows(IllegalStateException.class, p::mergeAdapter);
        assertTrue(e.getMessage().startsWith("model.layers.2.mlp.down_proj.lora_B holds values that are not finite"), e.getMessage());
        assertFalse(p.isMerged());
        assertEquals(before.get("q"), m.parameters().get("model.layers.0.self_attn.q_proj.weight"),
                "a layer before the bad one is not merged either");
    }

    @Test
    void verbsWithoutAnAdapterAreRefused(@TempDir Path dir) {
        PeftModel p = new PeftModel(model());
        String expected = "the model has no adapter; attach one with addAdapter or loadAdapter";
        assertEquals(expected, assertThrows(IllegalStateException.class, p::mergeAdapter).getMessage());
        assertEquals(expected, assertThrows(IllegalStateException.class, () -> p.setMultiplier(2)).getMessage());
        assertEquals(expected, assertThrows(IllegalStateException.class,
                () -> p.savePretrained(dir, "base", Map.of())).getMessage());
        assertThrows(IllegalArgumentException.class, () -> p.setAdapter("default"));
    }

    @Test
    void multiplierScalesTheAdapterTermAndRefusesNonFinite() {
        DecoderModel m = model();
        INDArray base = logits(m);
        PeftModel p = new PeftModel(m);
        p.addAdapter("default", randomInit("down_proj"), 5);
        INDArray one = logits(m);
        p.setMultiplier(0);
        assertTrue(maxDiff(logits(m), base) < 1e-12, "multiplier 0 is the base model");
        p.setMultiplier(1);
        assertTrue(maxDiff(logits(m), one) < 1e-12);
        for (double bad : new double[]{Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.setMultiplier(bad));
            assertEquals("multiplier must be finite, got " + bad, e.getMessage());
        }
        p.activeAdapters().values().forEach(a -> assertEquals(1.0, a.multiplier(), "a refused value changes nothing"));
    }

    @Test
    void disableAdapterRunsTheBaseModel() {
        DecoderModel m = model();
        INDArray base = logits(m);
        PeftModel p = new PeftModel(m);
        p.addAdapter("default", randomInit("down_proj"), 5);
        INDArray adapted = logits(m);
        p.disableAdapter();
        assertTrue(maxDiff(logits(m), base) < 1e-12);
        p.enableAdapter();
        assertTrue(maxDiff(logits(m), adapted) < 1e-12);
    }

    @Test
    void setAdapterSwitchesEveryLayerThatHasIt() {
        PeftModel p = new PeftModel(model());
        p.addAdapter("a", randomInit("down_proj"), 1);
        p.addAdapter("b", randomInit("down_proj", "up_proj"), 2);
        // A layer's first adapter becomes its active one: "a" on down_proj, "b" on up_proj.
        p.activeAdapters().forEach((module, x) -> assertEquals(module.endsWith("down_proj") ? "a" : "b", x.name(), module));
        p.setAdapter("b");
        assertEquals(6, p.activeAdapters().size());
        p.activeAdapters().values().forEach(x -> assertEquals("b", x.name()));
        assertEquals(List.of("b", "a"), p.adapterNames(), "in model order: up_proj (b only) comes before down_proj");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.setAdapter("c"));
        assertEquals("no layer has an adapter 'c'; have [b, a]", e.getMessage());
    }

    @Test
    void trainableParametersCountAsPeftDoes() {
        DecoderModel m = model();
        PeftModel p = new PeftModel(m);
        long base = 0;
        for (INDArray w : m.parameters().values()) {
            base += w.length();
        }
        assertEquals(new PeftModel.TrainableParameters(0, base), p.trainableParameters());
        p.addAdapter("default", LoraConfig.of(2, 4, "down_proj"), 1);
        // down_proj is [32, 48]: A [2, 48], B [32, 2], three layers
        long lora = 3 * (2 * 48 + 32 * 2);
        PeftModel.TrainableParameters t = p.trainableParameters();
        assertEquals(new PeftModel.TrainableParameters(lora, base + lora), t);
        assertEquals(String.format(java.util.Locale.ROOT, "trainable params: %,d || all params: %,d || trainable%%: %.4f",
                lora, base + lora, 100.0 * lora / (base + lora)), t.toString());
        assertTrue(t.toString().startsWith("trainable params: 480 || all params: "), t.toString());
        m.setFullFinetune(true);
        assertEquals(new PeftModel.TrainableParameters(base + lora, base + lora), p.trainableParameters());
    }

    @Test
    void savePretrainedWritesPeftKeysAndLoadsBackOntoAFreshModel(@TempDir Path dir) throws IOException {
        DecoderModel m = model();
        PeftModel p = new PeftModel(m);
        p.addAdapter("default", randomInit("v_proj", "down_proj"), 5);
        INDArray adapted = logits(m);
        p.savePretrained(dir, "tiny-base", Map.of("lora4j_seed", "5"));
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapters.WEIGHTS_FILE))) {
            assertTrue(f.keys().contains("base_model.model." + DOWN1 + ".lora_A.weight"), f.keys().toString());
            assertTrue(f.keys().contains("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"));
            assertEquals(12, f.keys().size());
            assertEquals("5", f.metadata().get("lora4j_seed"));
        }
        PeftAdapter loaded = PeftAdapters.load(dir);
        assertEquals("tiny-base", loaded.baseModelNameOrPath());

        DecoderModel fresh = model();
        List<String> adapted2 = new PeftModel(fresh).loadAdapter(dir, PeftModel.DEFAULT_ADAPTER);
        assertEquals(6, adapted2.size());
        assertEquals(List.copyOf(p.activeAdapters().keySet()), adapted2, "model order");
        assertTrue(maxDiff(logits(fresh), adapted) < 1e-6, "float32 file, float64 model");
        IllegalArgumentException again = assertThrows(IllegalArgumentException.class,
                () -> new PeftModel(fresh).loadAdapter(loaded, PeftModel.DEFAULT_ADAPTER));
        assertTrue(again.getMessage().contains("already has an adapter named 'default'"), again.getMessage());
    }

    @Test
    void dropoutSeedsFollowLayerOrder() {
        DecoderModel m = model();
        new PeftModel(m).setDropoutSeeds(i -> 100L + i);
        int i = 0;
        for (LoraLinear l : m.linearLayers().values()) {
            assertEquals(100L + i++, l.dropoutSeed());
        }
    }

    @Test
    void savePretrainedRecordsTheModelsNameOrPath(@TempDir Path dir) throws IOException {
        Path plain = dir.resolve("plain");
        DecoderModel.randomInit(DecoderModelTest.small(), 7).save(plain);
        Path named = dir.resolve("named");
        DecoderModel.randomInit(DecoderModelTest.small(), 7).save(named);
        java.nio.file.Path cfg = named.resolve("config.json");
        java.nio.file.Files.writeString(cfg, java.nio.file.Files.readString(cfg).replaceFirst("\\{",
                "{\"_name_or_path\": \"org/tiny-base\","));

        DecoderModel fromPlain = DecoderModel.load(plain);
        assertEquals(plain.toAbsolutePath().normalize().toString(), fromPlain.nameOrPath(), "no _name_or_path: the directory");
        DecoderModel fromNamed = DecoderModel.load(named);
        assertEquals("org/tiny-base", fromNamed.nameOrPath());

        PeftModel p = new PeftModel(fromNamed);
        p.addAdapter("default", randomInit("v_proj"), 5);
        p.savePretrained(dir.resolve("a"));
        assertEquals("org/tiny-base", PeftAdapters.load(dir.resolve("a")).baseModelNameOrPath());
        fromNamed.setNameOrPath("me/my-copy");   // the command line's --base-model-name
        p.savePretrained(dir.resolve("b"));
        assertEquals("me/my-copy", PeftAdapters.load(dir.resolve("b")).baseModelNameOrPath());
        assertThrows(IllegalArgumentException.class, () -> fromNamed.setNameOrPath(" "));
    }
}

package org.lora4j.train.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.Safetensors;
import org.lora4j.core.SafetensorsFile;
import org.lora4j.train.text.Sampler;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DecoderModelTest {
    static final Path LLAMA = DecoderParityTest.PARITY.resolve("llama");
    static final Path QWEN2 = DecoderParityTest.PARITY.resolve("qwen2");

    /** A FLOAT model whose logits have clear winners (weights far larger than the 0.02 init). */
    static DecoderModel sharp(ModelConfig c, long seed) {
        DecoderModel m = DecoderModel.randomInit(c, seed);
        Random r = new Random(seed);
        m.parameters().forEach((name, p) -> {
            if (!name.endsWith("norm.weight")) {
                double[] v = new double[(int) p.length()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = r.nextGaussian() / Math.sqrt(p.size(-1));
                }
                p.assign(Nd4j.create(v, p.shape(), DataType.DOUBLE));
            }
        });
        return m;
    }

    static ModelConfig small() {
        return ModelConfig.qwen2(50, 32, 48, 3, 4, 2).withMaxPositionEmbeddings(64);
    }

    @Test
    void parametersUseHuggingFaceNames() {
        DecoderModel m = DecoderModel.randomInit(small(), 1);
        Map<String, INDArray> p = m.parameters();
        assertTrue(p.containsKey("model.embed_tokens.weight"));
        assertTrue(p.containsKey("model.layers.2.mlp.down_proj.weight"));
        assertTrue(p.containsKey("model.layers.0.self_attn.q_proj.bias"));
        assertFalse(p.containsKey("model.layers.0.self_attn.o_proj.bias"));
        assertTrue(p.containsKey("model.norm.weight"));
        assertTrue(p.containsKey("lm_head.weight"));
        assertArrayEquals(new long[]{16, 32}, p.get("model.layers.1.self_attn.k_proj.weight").shape());
        // 1 embedding + 3 x (2 norms + 7 weights + 3 biases) + final norm + lm_head
        assertEquals(1 + 3 * 12 + 2, p.size());
        List<String> adapted = new PeftModel(m).addAdapter("a", LoraConfig.of(1, 1, "down_proj").withLayersToTransform(List.of(2)), 3);
        assertEquals(List.of("model.layers.2.mlp.down_proj"), adapted);
        assertThrows(IllegalArgumentException.class,
                () -> new PeftModel(m).addAdapter("b", LoraConfig.of(1, 1, "dense_h_to_4h"), 3));
    }

    @Test
    void kvCacheGeneratesTheSameTokensAsRecomputing() {
        DecoderModel m = sharp(small(), 2);
        m.addResidualHook(1, new ResidualHook.AddVector(Nd4j.rand(DataType.FLOAT, 32), 2.0));
        int[] prompt = {3, 14, 15, 9, 2, 6};
        int[] cached = m.generate(prompt, 20, null, DecoderModel.greedy(), true);
        int[] recomputed = m.generate(prompt, 20, null, DecoderModel.greedy(), false);
        assertEquals(20, cached.length);
        assertArrayEquals(recomputed, cached);
        int[] sampledCached = m.generate(prompt, 20, null, new Sampler(1.0, 0.9, 5)::next, true);
        int[] sampledRecomputed = m.generate(prompt, 20, null, new Sampler(1.0, 0.9, 5)::next, false);
        assertArrayEquals(sampledRecomputed, sampledCached);
        // A stop token ends generation and is returned.
        int[] stopped = m.generate(prompt, 20, new int[]{cached[3]}, DecoderModel.greedy(), true);
        assertTrue(stopped.length <= 4 && stopped[stopped.length - 1] == cached[3], java.util.Arrays.toString(stopped));
    }

    /**
     * Generation from the Llama fixture's first three tokens, fed the fixture's next token at each
     * step (teacher forcing), hands the token picker at each step the logits PyTorch computed for
     * that position over the whole sequence (parity/llama/expected.safetensors), with and without
     * the KV cache; greedy generation gives the same tokens both ways. The fixture is float32
     * PyTorch: measured 4.5e-7 of the largest logit at worst. Past 64 positions:
     * DecoderLongParityTest.
     */
    @Test
    void generationMatchesTheFullForwardOfThePyTorchFixture() throws IOException {
        DecoderModel m = DecoderModel.load(LLAMA);
        try (SafetensorsFile exp = SafetensorsFile.open(LLAMA.resolve("expected.safetensors"))) {
            int t = Integer.parseInt(exp.metadata().get("T"));
            int[] ids = exp.get("input_ids").toIntVector();
            INDArray want = exp.get("logits");   // [B*T, V]; sequence 0 is rows 0..T-1
            double scale = want.amaxNumber().doubleValue();
            int promptLen = 3;
            int[] prompt = java.util.Arrays.copyOf(ids, promptLen);
            for (boolean cache : new boolean[]{true, false}) {
                java.util.List<float[]> steps = new java.util.ArrayList<>();
                m.generate(prompt, t - promptLen, null, logits -> {
                    steps.add(logits.clone());
                    return ids[promptLen + steps.size() - 1];
                }, cache);
                assertEquals(t - promptLen, steps.size());
                double worst = 0;
                for (int s = 0; s < steps.size(); s++) {
                    for (int v = 0; v < steps.get(s).length; v++) {
                        worst = Math.max(worst, Math.abs(steps.get(s)[v] - want.getDouble(promptLen - 1 + s, v)) / scale);
                    }
                }
                System.out.printf("llama fixture generation (%s): worst step logit rel err %.2e%n",
                        cache ? "kv-cache" : "recompute", worst);
                assertTrue(worst < 1e-6, (cache ? "cached" : "recomputed") + " step logits rel err " + worst);
            }
        }
        int[] out = m.generate(new int[]{5, 7, 11}, 12, null, DecoderModel.greedy(), true);
        assertArrayEquals(m.generate(new int[]{5, 7, 11}, 12, null, DecoderModel.greedy(), false), out);
    }

    @Test
    void saveThenLoadGivesTheSameLogits(@TempDir Path tmp) throws IOException {
        for (boolean tied : new boolean[]{false, true}) {
            DecoderModel m = sharp(small().withTiedEmbeddings(tied).withSpecialTokens(1, List.of(2, 3)), 4);
            int[] tokens = {1, 2, 3, 4, 5, 6, 7, 8};
            INDArray before = m.forward(tokens, null, 2, 4).dup();
            Path dir = tmp.resolve("m" + tied);
            m.save(dir);
            DecoderModel back = DecoderModel.load(dir);
            assertEquals(m.config(), back.config());
            DecoderParityTest.assertExactlyEqual(before, back.forward(tokens, null, 2, 4), "logits after save and load (F32, exact)");
            try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
                assertEquals(!tied, f.keys().contains("lm_head.weight"));
            }
        }
    }

    @Test
    void loadsHalfAndBfloat16Weights(@TempDir Path tmp) throws IOException {
        DecoderModel m = DecoderModel.load(QWEN2);  // stored as BF16 by make_parity.py
        int[] tokens = {1, 2, 3, 4, 5};
        INDArray ref = m.forward(tokens, null, 1, 5).dup();
        Map<String, INDArray> half = new LinkedHashMap<>();
        m.parameters().forEach((k, v) -> half.put(k, v.dup('c').castTo(DataType.HALF)));
        Files.createDirectories(tmp);
        Files.copy(QWEN2.resolve("config.json"), tmp.resolve("config.json"));
        Safetensors.write(tmp.resolve("model.safetensors"), half, Map.of("format", "pt"));
        try (SafetensorsFile f = SafetensorsFile.open(tmp.resolve("model.safetensors"))) {
            assertEquals("F16", f.dtype("model.norm.weight"));
        }
        INDArray got = DecoderModel.load(tmp).forward(tokens, null, 1, 5);
        // BF16 values of this range (8-bit mantissa) are exact in F16 (10 bits), so the logits agree.
        double err = DecoderParityTest.relErr(got, ref);
        assertTrue(err < 1e-6, "F16 logits differ from BF16 by " + err);
    }

    @Test
    void residualHooksSteerAblateAndCapture() {
        DecoderModel m = sharp(small(), 6);
        int[] tokens = {4, 8, 15, 16, 23, 42};
        boolean[] mask = {false, false, true, true, true, false};
        ResidualHook.Capture capture = new ResidualHook.Capture();
        m.addResidualHook(1, capture);
        INDArray base = m.forward(tokens, mask, 1, 6).dup();
        assertEquals(3, capture.count());
        INDArray direction = capture.mean();

        capture.reset();
        ResidualHook.ProjectOut ablate = new ResidualHook.ProjectOut(direction);
        m.clearResidualHooks();
        m.addResidualHook(1, ablate);
        m.addResidualHook(1, capture);
        INDArray ablated = m.forward(tokens, mask, 1, 6).dup();
        double along = capture.mean().castTo(DataType.DOUBLE).mul(direction).sumNumber().doubleValue()
                / direction.norm2Number().doubleValue();
        assertEquals(0.0, along, 1e-5, "component along the ablated direction");
        assertTrue(DecoderParityTest.relErr(ablated, base) > 1e-3);

        m.clearResidualHooks();
        m.addResidualHook(0, new ResidualHook.AddVector(direction, 4.0));
        assertTrue(DecoderParityTest.relErr(m.forward(tokens, null, 1, 6), base) > 1e-3);
        m.clearResidualHooks();
        DecoderParityTest.assertExactlyEqual(base, m.forward(tokens, null, 1, 6), "logits with the hooks cleared");
    }

    @Test
    void rejectsBadInputWithAClearMessage(@TempDir Path tmp) throws IOException {
        DecoderModel m = DecoderModel.randomInit(small(), 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> m.forward(new int[]{1, 2, 50}, null, 1, 3));
        assertTrue(e.getMessage().contains("token id 50 at position 2"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> m.generate(new int[]{-1}, 3, null, DecoderModel.greedy(), true));

        // heads that do not divide the hidden size
        String cfg = Files.readString(QWEN2.resolve("config.json")).replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 3");
        Path bad = tmp.resolve("heads");
        Files.createDirectories(bad);
        Files.writeString(bad.resolve("config.json"), cfg);
        e = assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromHfConfig(bad.resolve("config.json")));
        assertTrue(e.getMessage().contains("hidden_size (16) must be a multiple of num_attention_heads (3)"), e.getMessage());

        // unsupported architecture
        Path arch = tmp.resolve("arch");
        Files.createDirectories(arch);
        Files.writeString(arch.resolve("config.json"),
                Files.readString(QWEN2.resolve("config.json")).replace("Qwen2ForCausalLM", "GPT2LMHeadModel"));
        e = assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromHfConfig(arch.resolve("config.json")));
        assertTrue(e.getMessage().contains("'GPT2LMHeadModel' is not supported"), e.getMessage());

        // a missing weight and a weight of the wrong shape
        Map<String, INDArray> weights = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(QWEN2.resolve("model.safetensors"))) {
            for (String k : f.keys()) {
                weights.put(k, f.get(k));
            }
        }
        Path missing = tmp.resolve("missing");
        Files.createDirectories(missing);
        Files.copy(QWEN2.resolve("config.json"), missing.resolve("config.json"));
        Map<String, INDArray> less = new LinkedHashMap<>(weights);
        less.remove("model.layers.1.mlp.up_proj.weight");
        Safetensors.write(missing.resolve("model.safetensors"), less, null);
        e = assertThrows(IllegalArgumentException.class, () -> DecoderModel.load(missing));
        assertTrue(e.getMessage().contains("missing weight 'model.layers.1.mlp.up_proj.weight'"), e.getMessage());

        Path shape = tmp.resolve("shape");
        Files.createDirectories(shape);
        Files.copy(QWEN2.resolve("config.json"), shape.resolve("config.json"));
        Map<String, INDArray> wrong = new LinkedHashMap<>(weights);
        wrong.put("model.layers.0.self_attn.k_proj.weight", Nd4j.zeros(DataType.FLOAT, 16, 16));
        Safetensors.write(shape.resolve("model.safetensors"), wrong, null);
        e = assertThrows(IllegalArgumentException.class, () -> DecoderModel.load(shape));
        assertTrue(e.getMessage().contains("weight 'model.layers.0.self_attn.k_proj.weight' has shape [16, 16], expected [8, 16]"),
                e.getMessage());

        // a missing shard
        Path shards = tmp.resolve("shards");
        Files.createDirectories(shards);
        for (String f : new String[]{"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors"}) {
            Files.copy(LLAMA.resolve(f), shards.resolve(f));
        }
        NoSuchFileException nf = assertThrows(NoSuchFileException.class, () -> DecoderModel.load(shards));
        assertTrue(nf.getMessage().contains("model-00002-of-00002.safetensors"), nf.getMessage());
    }

    @Test
    void readsTheHuggingFaceConfigFields() throws IOException {
        ModelConfig c = ModelConfig.fromHfConfig(LLAMA.resolve("config.json"));
        assertEquals(ModelConfig.Architecture.LLAMA, c.architecture());
        assertEquals(8, c.headDim());
        assertEquals(2, c.numKvHeads());
        assertEquals(1e-5, c.rmsNormEps());
        assertEquals("llama3", c.ropeScaling().type());
        assertEquals(List.of(2, 3), c.eosTokenIds());
        assertEquals(1, c.bosTokenId());
        assertFalse(c.tieWordEmbeddings());
        ModelConfig q = ModelConfig.fromHfConfig(QWEN2.resolve("config.json"));
        assertTrue(q.tieWordEmbeddings() && q.attentionBias() && !q.outputBias());
        assertEquals(8, q.headDim());
        assertEquals(1e6, q.ropeTheta());
    }

    @Test
    void backwardScalesTheLossGradient() {
        DecoderModel m = sharp(small(), 8);
        m.setFullFinetune(true);
        int[] tokens = {1, 2, 3, 4, 5, 6};
        m.loss(tokens, null, 2, 3);
        m.backward(1.0);
        INDArray full = m.trainableParameters().get(3).grad().dup();
        m.zeroGrad();
        m.loss(tokens, null, 2, 3);
        m.backward(0.25);
        INDArray quarter = m.trainableParameters().get(3).grad();
        assertTrue(DecoderParityTest.relErr(quarter.mul(4), full) < 1e-5);
    }

    @Test
    void frozenBaseHoldsNoGradientsAndBackwardNeedsALoss() {
        DecoderModel m = DecoderModel.randomInit(small(), 1);
        assertTrue(m.trainableParameters().isEmpty());
        assertThrows(IllegalStateException.class, () -> m.backward(1.0));
        m.setFullFinetune(true);
        assertEquals(m.parameters().size(), m.trainableParameters().size());
        m.setFullFinetune(false);
        m.linearLayers().values().forEach(l -> assertTrue(l.weightGrad() == null));
    }
}

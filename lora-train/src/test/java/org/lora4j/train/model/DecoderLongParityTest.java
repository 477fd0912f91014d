package org.lora4j.train.model;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.SafetensorsFile;
import org.lora4j.train.optim.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The model against PyTorch at sequence 150, past one 64 x 64 attention tile (three query tiles,
 * so the tiled FLOAT attention every run at sequence 128 takes is covered): logits, loss and the
 * gradient of every parameter (full fine-tuning and the LoRA A/B of q_proj, v_proj, down_proj),
 * and the per-step logits of KV-cache generation out to position 149, in FLOAT and DOUBLE, each
 * against a float64 PyTorch reference computed from the same float32 weights
 * (src/test/resources/parity/make_long_parity.py writes parity/long/).
 *
 * <p>Errors are max |got − want| / max |want| per tensor. The bounds sit about 2.5 times above what
 * was measured here (each run prints its errors): FLOAT logits 4.1e-6, gradients 2.8e-6 (worst of
 * 33), generation steps 2.3e-6; DOUBLE logits 3.8e-15, gradients 7.5e-15, generation steps 3.9e-8
 * (the token picker gets float logits, so DOUBLE generation is bounded by float's rounding).
 */
class DecoderLongParityTest {
    static final Path LONG = DecoderParityTest.PARITY.resolve("long");

    /** Errors measured (see the class comment) times a small margin. */
    static double logitBound(DataType t) {
        return t == DataType.FLOAT ? 1e-5 : 5e-14;
    }

    static double gradBound(DataType t) {
        return t == DataType.FLOAT ? 7e-6 : 5e-14;
    }

    static double stepBound(DataType t) {
        return t == DataType.FLOAT ? 6e-6 : 1e-7;
    }

    /** The fixture's model with its adapters attached and full fine-tuning on (every gradient). */
    static DecoderModel load(DataType dtype) throws IOException {
        DecoderModel m = DecoderModel.load(LONG, dtype);
        try (SafetensorsFile ad = SafetensorsFile.open(LONG.resolve("adapter.safetensors"))) {
            int r = Integer.parseInt(ad.metadata().get("r"));
            double alpha = Double.parseDouble(ad.metadata().get("lora_alpha"));
            String[] targets = ad.metadata().get("target_modules").split(",");
            List<String> adapted = new PeftModel(m).addAdapter("default", LoraConfig.of(r, alpha, targets)
                    .withInit(LoraConfig.Init.RANDOM), 1);
            assertEquals(ad.keys().size() / 2, adapted.size());
            for (String mod : adapted) {
                LoraAdapter a = m.linearLayers().get(mod).activeAdapter();
                a.a().assign(ad.get(mod + ".lora_A.weight"));
                a.b().assign(ad.get(mod + ".lora_B.weight"));
            }
        }
        m.setFullFinetune(true);
        return m;
    }

    @ParameterizedTest
    @EnumSource(value = DataType.class, names = {"FLOAT", "DOUBLE"})
    void logitsLossAndEveryGradientMatchPyTorchAtSequence150(DataType dtype) throws IOException {
        DecoderModel model = load(dtype);
        try (SafetensorsFile exp = SafetensorsFile.open(LONG.resolve("expected.safetensors"))) {
            int b = Integer.parseInt(exp.metadata().get("B"));
            int t = Integer.parseInt(exp.metadata().get("T"));
            assertTrue(t > 128, "the fixture must span more than two attention tiles, T = " + t);
            int[] ids = exp.get("input_ids").toIntVector();
            int[] m = exp.get("loss_mask").castTo(DataType.INT).toIntVector();
            boolean[] mask = new boolean[m.length];
            for (int i = 0; i < m.length; i++) {
                mask[i] = m[i] != 0;
            }
            double logitErr = DecoderParityTest.relErr(model.forward(ids, null, b, t).dup(), exp.get("logits"));
            model.zeroGrad();
            double loss = model.lossAndBackward(ids, mask, b, t);
            double want = exp.get("loss").getDouble(0);
            double lossErr = Math.abs(loss - want) / Math.abs(want);
            Map<String, INDArray> grads = new HashMap<>();
            for (Parameter p : model.trainableParameters()) {
                grads.put(p.name(), p.grad());
            }
            double worst = 0;
            String worstName = "";
            StringBuilder report = new StringBuilder();
            int checked = 0;
            for (String key : exp.keys()) {
                if (!key.startsWith("grad.")) {
                    continue;
                }
                String name = key.substring("grad.".length());
                INDArray g = grads.remove(name);
                assertTrue(g != null, dtype + ": no gradient for " + name);
                double e = DecoderParityTest.relErr(g, exp.get(key));
                report.append(String.format("%n  %s %.2e", name, e));
                if (e > worst) {
                    worst = e;
                    worstName = name;
                }
                checked++;
            }
            System.out.printf("long parity %s T=%d: loss %.2e, logits %.2e, worst of %d gradients %.2e (%s)%s%n",
                    dtype, t, lossErr, logitErr, checked, worst, worstName, report);
            assertTrue(grads.isEmpty(), "trainable parameters the fixture has no gradient for: " + grads.keySet());
            assertEquals(33, checked, "every parameter: 21 base tensors and 12 LoRA A/B (make_long_parity.py)");
            assertTrue(logitErr < logitBound(dtype), dtype + " logits rel err " + logitErr);
            assertTrue(lossErr < logitBound(dtype), dtype + " loss rel err " + lossErr);
            assertTrue(worst < gradBound(dtype), dtype + " gradient " + worstName + " rel err " + worst);

            // LoRA alone (base frozen), the path of every sft run: the same A/B gradients.
            model.setFullFinetune(false);
            model.zeroGrad();
            double loraLoss = model.lossAndBackward(ids, mask, b, t);
            assertEquals(loss, loraLoss, Math.abs(loss) * logitBound(dtype), "the loss does not depend on what trains");
            List<Parameter> lora = model.trainableParameters();
            assertEquals(12, lora.size(), "lora_A and lora_B of 6 layers");
            double worstLora = 0;
            for (Parameter p : lora) {
                worstLora = Math.max(worstLora, DecoderParityTest.relErr(p.grad(), exp.get("grad." + p.name())));
            }
            System.out.printf("long parity %s T=%d, LoRA only: worst of %d gradients %.2e%n", dtype, t, lora.size(), worstLora);
            assertTrue(worstLora < gradBound(dtype), dtype + " LoRA-only gradient rel err " + worstLora);
        }
    }

    /**
     * Generation with the KV cache, fed the fixture's tokens, returns at every step the logits
     * PyTorch computed for that position over the whole sequence; positions run past 64 and 128,
     * from a short prompt (one query tile, then one query at a time) and from a prompt of 100
     * (the prefill itself spans two query tiles).
     */
    @ParameterizedTest
    @EnumSource(value = DataType.class, names = {"FLOAT", "DOUBLE"})
    void kvCacheGenerationLogitsMatchPyTorchAtEveryStepPast64(DataType dtype) throws IOException {
        DecoderModel model = load(dtype);
        model.setFullFinetune(false);
        try (SafetensorsFile exp = SafetensorsFile.open(LONG.resolve("expected.safetensors"))) {
            int t = Integer.parseInt(exp.metadata().get("T"));
            int[] ids = exp.get("input_ids").toIntVector();
            INDArray want = exp.get("logits");   // [B*T, V]; sequence 0 is rows 0..T-1
            double scale = want.amaxNumber().doubleValue();
            for (int promptLen : new int[]{5, 100}) {
                for (boolean cache : new boolean[]{true, false}) {
                    int[] prompt = java.util.Arrays.copyOf(ids, promptLen);
                    List<float[]> steps = new ArrayList<>();
                    int[] out = model.generate(prompt, t - promptLen, null, logits -> {
                        steps.add(logits.clone());
                        return ids[promptLen + steps.size() - 1];   // teacher forcing: the fixture's next token
                    }, cache);
                    assertEquals(t - promptLen, out.length);
                    assertEquals(t - promptLen, steps.size());
                    double worst = 0;
                    int worstPos = -1;
                    for (int s = 0; s < steps.size(); s++) {
                        int pos = promptLen - 1 + s;            // the step's logits predict token pos + 1
                        float[] got = steps.get(s);
                        for (int v = 0; v < got.length; v++) {
                            double e = Math.abs(got[v] - want.getDouble(pos, v)) / scale;
                            if (e > worst) {
                                worst = e;
                                worstPos = pos;
                            }
                        }
                    }
                    System.out.printf("long generation %s prompt %d %s: %d steps to position %d, worst logit rel err %.2e at %d%n",
                            dtype, promptLen, cache ? "kv-cache" : "recompute", steps.size(), t - 2, worst, worstPos);
                    assertTrue(worst < stepBound(dtype), dtype + " prompt " + promptLen + (cache ? " cached" : " recomputed")
                            + " step logits rel err " + worst + " at position " + worstPos);
                }
            }
        }
    }
}

package org.lora4j.train;

import org.junit.jupiter.api.Test;
import org.lora4j.core.SafetensorsFile;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Matches the Java model with a plain PyTorch implementation of the same architecture
 * (src/test/resources/parity/make_parity.py): logits, loss and parameter gradients of a Llama
 * checkpoint (F32, two shards, llama3 rope_scaling, GQA, untied, head_dim given) and a Qwen2
 * checkpoint (BF16, q/k/v bias, GQA, tied embeddings).
 */
class DecoderParityTest {
    static final Path PARITY = Path.of("src/test/resources/parity");
    static final double TOLERANCE = 1e-4;

    @Test
    void llamaMatchesPyTorch() throws Exception {
        check("llama", 7);
    }

    @Test
    void qwen2MatchesPyTorch() throws Exception {
        check("qwen2", 7);
    }

    private void check(String name, int expectedGrads) throws Exception {
        Path dir = PARITY.resolve(name);
        DecoderModel model = DecoderModel.load(dir);
        model.setFullFinetune(true);
        try (SafetensorsFile exp = SafetensorsFile.open(dir.resolve("expected.safetensors"))) {
            int b = Integer.parseInt(exp.metadata().get("B"));
            int t = Integer.parseInt(exp.metadata().get("T"));
            int[] ids = exp.get("input_ids").toIntVector();
            int[] m = exp.get("loss_mask").castTo(DataType.INT).toIntVector();
            boolean[] mask = new boolean[m.length];
            for (int i = 0; i < m.length; i++) {
                mask[i] = m[i] != 0;
            }
            double logitErr = relErr(model.forward(ids, b, t).dup(), exp.get("logits"));
            double loss = model.lossAndBackward(ids, mask, b, t);
            double lossErr = Math.abs(loss - exp.get("loss").getDouble(0)) / Math.abs(exp.get("loss").getDouble(0));
            Map<String, INDArray> grads = new HashMap<>();
            model.trainableParameters().forEach(p -> grads.put(p.name(), p.grad()));
            int checked = 0;
            StringBuilder report = new StringBuilder();
            double worst = 0;
            for (String key : exp.keys()) {
                if (!key.startsWith("grad.")) {
                    continue;
                }
                String param = key.substring("grad.".length());
                INDArray g = grads.get(param);
                assertTrue(g != null, name + ": no gradient for " + param);
                double e = relErr(g, exp.get(key));
                worst = Math.max(worst, e);
                report.append(String.format(" %s=%.2e", param, e));
                checked++;
            }
            System.out.printf("parity %s: loss rel err %.2e, logits rel err %.2e, worst grad rel err %.2e;%s%n",
                    name, lossErr, logitErr, worst, report);
            assertEquals(expectedGrads, checked);
            assertTrue(lossErr < TOLERANCE, name + " loss rel err " + lossErr);
            assertTrue(logitErr < TOLERANCE, name + " logits rel err " + logitErr);
            assertTrue(worst < TOLERANCE, name + " gradient rel err " + report);
        }
    }

    /** max |a − b| / max |b|: the error relative to the tensor's scale. */
    static double relErr(INDArray a, INDArray b) {
        INDArray x = a.castTo(DataType.DOUBLE).reshape(b.shape());
        INDArray y = b.castTo(DataType.DOUBLE);
        return x.sub(y).amaxNumber().doubleValue() / y.amaxNumber().doubleValue();
    }
}

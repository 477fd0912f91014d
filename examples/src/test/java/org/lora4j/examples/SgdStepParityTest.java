package org.lora4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.PeftAdapter;
import org.lora4j.core.PeftAdapters;
import org.lora4j.core.SafetensorsFile;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.text.EncodedChat;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 4's exactness test: one step of {@code lora4j sft --optimizer sgd} on the whole file as one
 * batch leaves the adapter at A0 - lr·dL/dA, B0 - lr·dL/dB, with the gradient from PyTorch
 * (src/test/resources/sgd/make_sgd_fixture.py, which tokenises, runs the model and LoRA on its own).
 */
class SgdStepParityTest {
    static Path fixture() throws URISyntaxException {
        return Path.of(SgdStepParityTest.class.getResource("/sgd/expected.safetensors").toURI()).getParent();
    }

    @Test
    void oneSgdStepEqualsTheInitialAdapterMinusLrTimesTheTorchGradient(@TempDir Path tmp) throws Exception {
        Path fx = fixture();
        Path model = tmp.resolve("model");
        Files.createDirectories(model);
        Files.copy(fx.resolve("model/config.json"), model.resolve("config.json"));
        Files.copy(fx.resolve("model/model.safetensors"), model.resolve("model.safetensors"));
        new ByteTokenizer().save(model);
        Path out = tmp.resolve("out");
        int rc = Main.run(new String[]{"sft", "--model", model.toString(), "--data", fx.resolve("data.jsonl").toString(),
                "--init-adapter", fx.resolve("init_adapter").toString(), "--out", out.toString(),
                "--optimizer", "sgd", "--lr", "0.5", "--schedule", "constant", "--warmup-steps", "0",
                "--weight-decay", "0", "--max-grad-norm", "0", "--lora-dropout", "0", "--batch-size", "4",
                "--eval-fraction", "0", "--max-steps", "1", "--quiet"});
        assertEquals(0, rc);

        PeftAdapter trained = PeftAdapters.load(out);
        PeftAdapter initial = PeftAdapters.load(fx.resolve("init_adapter"));
        try (SafetensorsFile expected = SafetensorsFile.open(fx.resolve("expected.safetensors"))) {
            assertEquals(6, trained.loraA().size());
            double worst = 0;
            double moved = 0;
            for (String module : trained.loraA().keySet()) {
                for (String which : new String[]{"lora_A", "lora_B"}) {
                    INDArray got = (which.equals("lora_A") ? trained.loraA() : trained.loraB()).get(module);
                    INDArray init = (which.equals("lora_A") ? initial.loraA() : initial.loraB()).get(module);
                    INDArray want = expected.get("base_model.model." + module + "." + which + ".weight");
                    double step = want.sub(init).norm2Number().doubleValue();
                    double err = got.sub(want).norm2Number().doubleValue() / step;
                    worst = Math.max(worst, err);
                    moved = Math.max(moved, step);
                    // The error relative to the step taken: float32 forward/backward against torch's.
                    assertTrue(err < 1e-4, module + " " + which + ": |got - torch| / |step| = " + err);
                }
            }
            assertTrue(moved > 1e-3, "the step moved the adapter by " + moved);
            System.out.println("sgd parity: worst |got - torch| / |lr * grad| = " + worst);
        }
    }

    @Test
    void theTokenisationMatchesThePythonReference() throws Exception {
        Path fx = fixture();
        Dataset d = Dataset.load(fx.resolve("data.jsonl"), new ByteTokenizer(), 1000, Dataset.Overflow.REFUSE);
        try (SafetensorsFile expected = SafetensorsFile.open(fx.resolve("expected.safetensors"))) {
            for (int r = 0; r < d.size(); r++) {
                EncodedChat e = d.examples().get(r);
                long[] ids = expected.get("ids." + r, DataType.LONG).toLongVector();
                long[] mask = expected.get("mask." + r, DataType.LONG).toLongVector();
                assertArrayEquals(ids, java.util.Arrays.stream(e.ids()).asLongStream().toArray(), "ids of line " + (r + 1));
                boolean[] m = e.lossMask();
                for (int i = 0; i < m.length; i++) {
                    assertEquals(mask[i] != 0, m[i], "mask of line " + (r + 1) + " at " + i);
                }
            }
        }
    }
}

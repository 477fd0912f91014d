package org.lora4j.train.model;

import org.junit.jupiter.api.Test;
import org.lora4j.core.Safetensors;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A model lora4j saves loads in Python: the saved directory, the input ids and lora4j's logits are
 * handed to parity/check_saved_model.py, which recomputes the logits with PyTorch. Runs when
 * /usr/bin/python3 has torch (Debian's python3-torch); without it the test is skipped, unless the
 * environment variable CI is set, when it fails (.ci/run installs torch, so CI never skips it).
 */
class SavedModelInteropTest {
    @Test
    void pytorchReproducesTheLogitsOfASavedModel() throws Exception {
        Path python = Path.of("/usr/bin/python3");
        boolean torch = false;
        if (Files.isExecutable(python)) {
            Process probe = new ProcessBuilder(python.toString(), "-c", "import torch").redirectErrorStream(true).start();
            probe.getInputStream().readAllBytes();
            torch = probe.waitFor(120, TimeUnit.SECONDS) && probe.exitValue() == 0;
        }
        if (!torch) {
            // Skipped on a developer machine without torch, but never on CI (.ci/run installs python3-torch).
            if (System.getenv("CI") != null) {
                fail("CI is set and /usr/bin/python3 has no torch: the PyTorch interop check cannot run"
                        + " (.ci/run installs Debian's python3-torch)");
            }
            assumeTrue(false, "no /usr/bin/python3 with torch: skipping the PyTorch side");
        }

        Path dir = Path.of("target", "saved-model-interop");
        for (boolean tied : new boolean[]{false, true}) {
            ModelConfig cfg = ModelConfig.qwen2(50, 16, 40, 2, 4, 2).withTiedEmbeddings(tied);
            DecoderModel model = DecoderModel.randomInit(cfg, tied ? 2 : 1);
            Path modelDir = dir.resolve(tied ? "qwen2-tied" : "qwen2");
            model.save(modelDir);
            int batch = 2, seq = 7;
            int[] ids = new int[batch * seq];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = (i * 17 + 3) % cfg.vocabSize();
            }
            INDArray logits = model.forward(ids, null, batch, seq).dup('c');
            Map<String, INDArray> t = new LinkedHashMap<>();
            long[] longIds = new long[ids.length];
            for (int i = 0; i < ids.length; i++) {
                longIds[i] = ids[i];
            }
            t.put("input_ids", Nd4j.createFromArray(longIds).reshape(batch, seq));
            t.put("logits", logits.castTo(DataType.FLOAT));
            Path inputs = modelDir.resolve("lora4j_inputs.safetensors");
            Safetensors.write(inputs, t, Map.of());
            Path script = Path.of("src", "test", "resources", "parity", "check_saved_model.py");
            Process p = new ProcessBuilder(python.toString(), script.toString(), modelDir.toString(), inputs.toString())
                    .redirectErrorStream(true).start();
            String output = new String(p.getInputStream().readAllBytes());
            assertTrue(p.waitFor(120, TimeUnit.SECONDS));
            System.out.print(output);
            assertEquals(0, p.exitValue(), output);
            assertTrue(output.contains("OK:"), output);
        }
    }
}

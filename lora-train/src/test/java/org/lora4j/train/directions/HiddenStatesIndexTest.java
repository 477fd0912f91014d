package org.lora4j.train.directions;

import org.junit.jupiter.api.Test;
import org.lora4j.core.SafetensorsFile;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ResidualHook;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Layer l of a direction is Hugging Face's {@code hidden_states[l + 1]}: against a PyTorch fixture
 * (src/test/resources/directions/make_hidden_states.py) that builds the {@code output_hidden_states}
 * tuple as transformers' LlamaModel does for the parity Llama. For the last layer transformers
 * returns the stream after the final norm; a hook (and so a direction) sees the stream before it.
 */
class HiddenStatesIndexTest {
    static final Path FIXTURE = Path.of("src/test/resources/directions/hidden_states.safetensors");
    static final Path LLAMA = Path.of("src/test/resources/parity/llama");

    /** max |a − b| / max |b|. */
    static double relMax(double[][] a, double[][] b) {
        double diff = 0;
        double scale = 0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                diff = Math.max(diff, Math.abs(a[i][j] - b[i][j]));
                scale = Math.max(scale, Math.abs(b[i][j]));
            }
        }
        return diff / scale;
    }

    @Test
    void layerLIsHiddenStatesLPlusOne() throws IOException {
        DecoderModel m = DecoderModel.load(LLAMA);
        int layers = m.config().numLayers();
        try (SafetensorsFile f = SafetensorsFile.open(FIXTURE);
             SafetensorsFile expected = SafetensorsFile.open(LLAMA.resolve("expected.safetensors"))) {
            long[] ids64 = expected.get("input_ids").toLongVector();
            int[] ids = new int[ids64.length];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = (int) ids64[i];
            }
            List<double[][]> seen = new ArrayList<>();
            for (int l = 0; l < layers; l++) {
                int at = l;
                seen.add(null);
                m.addResidualHook(l, (layer, hidden, mask) -> seen.set(at, hidden.toDoubleMatrix()));
            }
            m.forward(ids, null, 2, 9);
            for (int l = 0; l < layers; l++) {
                double[][] residual = f.get("residual." + l, DataType.DOUBLE).toDoubleMatrix();
                double[][] hf = f.get("hidden_states." + (l + 1), DataType.DOUBLE).toDoubleMatrix();
                double err = relMax(seen.get(l), residual);
                System.out.printf("layer %d: hook vs the stream after block %d: %.2e; vs hidden_states[%d]: %.2e%n",
                        l, l, err, l + 1, relMax(seen.get(l), hf));
                assertTrue(err < 1e-6, "layer " + l + ": " + err);
                if (l < layers - 1) {
                    assertTrue(relMax(seen.get(l), hf) < 1e-6, "hidden_states[" + (l + 1) + "]");
                } else {
                    assertTrue(relMax(seen.get(l), hf) > 0.1, "transformers' last entry is after the final norm");
                }
            }
            assertEquals(layers + 1, f.keys().stream().filter(k -> k.startsWith("hidden_states.")).count());
        }
    }
}

package org.lora4j.train.directions;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.Safetensors;
import org.lora4j.train.model.ModelConfig;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The directions file: round trip, validation against a model, the random control. */
class DirectionsFileTest {
    static final ModelConfig MODEL = ModelConfig.llama(32, 8, 12, 3, 2, 1);

    static Directions sample() {
        Map<Integer, double[]> v = new TreeMap<>();
        v.put(0, new double[]{1, -2, 3, 0.1, 0, 0, 0.5, 7});
        v.put(2, new double[]{-1, 1, -1, 1, -1, 1, -1, 1.25});
        return new Directions(v, Map.of("pooling", "answer", "seed", "4"), "sample");
    }

    @Test
    void roundTripKeepsLayersValuesAndMetadata(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("d.safetensors");
        sample().write(f);
        Directions back = Directions.read(f, MODEL);
        assertEquals(java.util.List.of(0, 2), back.layers());
        assertEquals(8, back.width());
        assertArrayEquals(sample().vector(0), back.vector(0), 1e-6);   // stored as F32
        assertArrayEquals(sample().vector(2), back.vector(2), 0);        // exact in F32
        assertEquals("answer", back.metadata().get("pooling"));
        assertEquals(Directions.FORMAT, back.metadata().get("format"));
        try (var sf = org.lora4j.core.SafetensorsFile.open(f)) {
            assertEquals("F32", sf.dtype("layers.0"));
            assertArrayEquals(new long[]{8}, sf.shape("layers.2"));
        }
    }

    @Test
    void refusesDirectionsThatDoNotFitTheModel(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("d.safetensors");
        sample().write(f);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Directions.read(f, ModelConfig.llama(32, 16, 12, 3, 2, 1)));
        assertEquals(f + ": directions have 8 elements but the model's hidden_size is 16 (made for another model?)",
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Directions.read(f, ModelConfig.llama(32, 8, 12, 2, 2, 1)));
        assertEquals(f + ": has a direction for layer 2 but the model has 2 layers (0..1)", e.getMessage());
        Directions d = Directions.read(f);
        e = assertThrows(IllegalArgumentException.class, () -> d.vector(1));
        assertEquals(f + " has no direction for layer 1; it holds layers [0, 2]", e.getMessage());
    }

    @Test
    void refusesBadFiles(@TempDir Path dir) throws IOException {
        Path nan = dir.resolve("nan.safetensors");
        Safetensors.write(nan, Map.of("layers.0", Nd4j.createFromArray(1f, Float.NaN, 3f)), null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Directions.read(nan));
        assertEquals(nan + ": layers.0[1] is NaN; a direction must be finite", e.getMessage());

        Path key = dir.resolve("key.safetensors");
        Safetensors.write(key, Map.of("layer.0", Nd4j.createFromArray(1f, 2f)), null);
        e = assertThrows(IllegalArgumentException.class, () -> Directions.read(key));
        assertEquals(key + ": unexpected key 'layer.0'; a directions file holds one tensor per layer, keyed layers.<l>",
                e.getMessage());

        Path matrix = dir.resolve("matrix.safetensors");
        Safetensors.write(matrix, Map.of("layers.1", Nd4j.rand(org.nd4j.linalg.api.buffer.DataType.FLOAT, 2, 4)), null);
        e = assertThrows(IllegalArgumentException.class, () -> Directions.read(matrix));
        assertEquals(matrix + ": layers.1 has shape [2, 4]; a direction is one vector [d_model]", e.getMessage());

        Path widths = dir.resolve("widths.safetensors");
        Map<String, INDArray> t = new LinkedHashMap<>();
        t.put("layers.0", Nd4j.createFromArray(1f, 2f, 3f));
        t.put("layers.1", Nd4j.createFromArray(1f, 2f));
        Safetensors.write(widths, t, null);
        e = assertThrows(IllegalArgumentException.class, () -> Directions.read(widths));
        assertTrue(e.getMessage().startsWith(widths + ": layers.1 has 2 elements but layers.0 has 3"), e.getMessage());

        Path empty = dir.resolve("empty.safetensors");
        Safetensors.write(empty, Map.of(), Map.of("format", "x"));
        e = assertThrows(IllegalArgumentException.class, () -> Directions.read(empty));
        assertTrue(e.getMessage().startsWith(empty + ": holds no direction"), e.getMessage());
    }

    @Test
    void randomControlHasEachDirectionsNormAndAnotherDirection() {
        Directions d = sample();
        Directions r = d.randomControl(11);
        assertEquals(d.layers(), r.layers());
        for (int l : d.layers()) {
            assertEquals(d.norm(l), r.norm(l), 1e-12 * d.norm(l), "layer " + l);
            double cos = DirectionComparison.cosine(d.vector(l), r.vector(l));
            assertTrue(Math.abs(cos) < 0.9, "layer " + l + " cos " + cos);
        }
        assertArrayEquals(r.vector(2), d.randomControl(11).vector(2), 0, "seeded");
        assertNotEquals(r.vector(2)[0], d.randomControl(12).vector(2)[0], "another seed, another draw");
        assertEquals("11", r.metadata().get("random_control_seed"));
        // The draw of a layer depends on (seed, layer) only, not on the other layers the file holds.
        Directions only2 = new Directions(Map.of(2, d.vector(2)), Map.of(), "only 2");
        assertArrayEquals(r.vector(2), only2.randomControl(11).vector(2), 0);
    }

    @Test
    void poolingAndLayerSelectionParse() {
        assertEquals(Pooling.answer(), Pooling.parse("answer"));
        assertEquals(Pooling.lastPrompt(1), Pooling.parse("last-prompt"));
        assertEquals(Pooling.lastPrompt(4), Pooling.parse("last-prompt:4"));
        assertEquals("last-prompt:4", Pooling.parse("last-prompt:4").toString());
        assertEquals("pooling last-prompt:k needs an integer k >= 1, got '0'",
                assertThrows(IllegalArgumentException.class, () -> Pooling.parse("last-prompt:0")).getMessage());
        assertEquals("pooling must be answer, last-prompt or last-prompt:k, got 'mean'",
                assertThrows(IllegalArgumentException.class, () -> Pooling.parse("mean")).getMessage());

        LayerSelection s = LayerSelection.parse("all@24");
        assertTrue(s.all());
        assertEquals(24, s.sourceFor(3));
        assertEquals("all@24", s.toString());
        LayerSelection list = LayerSelection.parse("5,2");
        assertEquals(java.util.List.of(2, 5), list.layers());
        assertEquals(5, list.sourceFor(5));
        assertEquals(java.util.List.of(0, 1, 2), LayerSelection.parse("all").resolve(3));
        assertEquals("layer 5 is out of range: the model has 3 layers (0..2)",
                assertThrows(IllegalArgumentException.class, () -> list.resolve(3)).getMessage());
        assertEquals("layer 7 is out of range: the model has 3 layers (0..2)",
                assertThrows(IllegalArgumentException.class, () -> LayerSelection.parse("all@7").resolve(3)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LayerSelection.parse("1,x"))
                .getMessage().endsWith("got '1,x'"));
        assertEquals("layer 1 is listed twice",
                assertThrows(IllegalArgumentException.class, () -> LayerSelection.parse("1,1")).getMessage());
    }
}

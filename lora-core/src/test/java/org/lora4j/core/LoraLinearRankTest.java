package org.lora4j.core;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** An adapter rank above min(out, in) is refused, naming the layer, the rank and the layer's shape. */
class LoraLinearRankTest {
    @Test
    void refusesARankAboveTheLayersSmallerDimension() {
        LoraLinear layer = new LoraLinear("model.layers.0.mlp.down_proj", Nd4j.ones(DataType.FLOAT, 4, 8), null);
        for (LoraConfig.Init init : LoraConfig.Init.values()) {
            LoraConfig config = LoraConfig.of(5, 5, "down_proj").withInit(init);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> layer.addAdapter("big", config, 1));
            assertEquals("model.layers.0.mlp.down_proj: adapter 'big' rank r = 5 exceeds the layer's smaller dimension "
                    + "min(out 4, in 8) = 4 (weight [4, 8])", e.getMessage(), init.toString());
        }
        LoraConfig five = LoraConfig.of(5, 5, "down_proj");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
                layer.addAdapter("loaded", five, Nd4j.ones(DataType.FLOAT, 5, 8), Nd4j.ones(DataType.FLOAT, 4, 5)));
        assertTrue(e.getMessage().contains("rank r = 5 exceeds"), e.getMessage());
        assertTrue(layer.adapterNames().isEmpty(), "nothing added");

        layer.addAdapter("full", LoraConfig.of(4, 4, "down_proj"), 1);   // r = min(out, in) is allowed
        assertEquals(1, layer.adapterNames().size());
    }
}

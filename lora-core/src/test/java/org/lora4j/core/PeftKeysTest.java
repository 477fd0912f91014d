package org.lora4j.core;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class PeftKeysTest {
    private static final String DOWN = "model.layers.3.mlp.down_proj";

    @Test
    void savedAndInMemoryFormsArePeftS() {
        assertEquals("base_model.model.model.layers.3.mlp.down_proj.lora_A.weight", PeftKeys.saved(DOWN, PeftKeys.Factor.A));
        assertEquals("base_model.model.model.layers.3.mlp.down_proj.lora_B.weight", PeftKeys.saved(DOWN, PeftKeys.Factor.B));
        assertEquals("base_model.model.model.layers.3.mlp.down_proj.lora_B.default.weight",
                PeftKeys.saved(DOWN, PeftKeys.Factor.B, "default"));
        assertEquals("model.layers.3.mlp.down_proj.lora_A.default.weight", PeftKeys.inMemory(DOWN, PeftKeys.Factor.A, "default"));
    }

    @Test
    void parseInvertsSaved() {
        for (PeftKeys.Factor f : PeftKeys.Factor.values()) {
            for (String adapter : new String[]{null, "default"}) {
                assertEquals(new PeftKeys.Parsed(DOWN, f, adapter), PeftKeys.parseSaved(PeftKeys.saved(DOWN, f, adapter)));
            }
        }
        assertNull(PeftKeys.parseSaved("base_model.model.lm_head.weight"));
        assertNull(PeftKeys.parseSaved(DOWN + ".lora_A.weight"), "the in-memory form is not a saved key");
    }

    @Test
    void factorNames() {
        assertEquals(PeftKeys.Factor.B, PeftKeys.Factor.fromPeft("lora_B"));
        assertThrows(IllegalArgumentException.class, () -> PeftKeys.Factor.fromPeft("lora_C"));
    }
}

package org.lora4j.examples;

import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ArgsTest {
    @Test
    void aRepeatedOptionIsRefusedNamingBothValues() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Args(new String[]{"--steer", "a.safetensors:1:8", "--lr", "1e-3", "--steer", "b.safetensors:1:8"}, Set.of()));
        assertEquals("--steer is given twice ('a.safetensors:1:8' and 'b.safetensors:1:8'); give it once", e.getMessage());
    }

    @Test
    void aRepeatedFlagIsHarmless() {
        Args a = new Args(new String[]{"--full", "--full", "--lr", "1e-3"}, Set.of("--full"));
        assertTrue(a.flag("--full"));
        assertEquals("1e-3", a.value("--lr", null));
    }

    @Test
    void aForgottenValueIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Args(new String[]{"--lr", "--out", "o"}, Set.of()));
        assertEquals("--lr needs a value, got the option --out", e.getMessage());
    }
}

package org.lora4j.train.model;

import org.lora4j.train.FuzzScratch;
import com.code_intelligence.jazzer.junit.FuzzTest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes {@code config.json}: any file ends in a configuration that writes itself back to the same
 * configuration, or in the reader's own exception (IOException, IllegalArgumentException) whose
 * one-line message names the file. The committed corpus runs in the normal build.
 */
class ModelConfigFuzzTest {
    private static final Path DIR = FuzzScratch.dir("lora4j-fuzz-config", "config.json", "again.json");

    @FuzzTest(maxDuration = "4m")
    void configJson(byte[] bytes) throws IOException {
        Path file = DIR.resolve("config.json");
        Files.write(file, bytes);
        ModelConfig config;
        try {
            config = ModelConfig.fromHfConfig(file);
        } catch (IOException | IllegalArgumentException e) {
            assertNotNull(e.getMessage(), () -> "no message: " + e);
            assertTrue(e.getMessage().contains(file.toString()), () -> "the message does not name the file: " + e);
            assertTrue(!e.getMessage().contains("\n"), () -> "the message is not one line: " + e);
            return;
        }
        Path again = DIR.resolve("again.json");
        Files.writeString(again, config.toHfJson());
        assertEquals(config, ModelConfig.fromHfConfig(again), "toHfJson does not read back as the same config");
    }
}

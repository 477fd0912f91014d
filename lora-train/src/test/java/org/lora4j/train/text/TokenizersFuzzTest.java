package org.lora4j.train.text;

import com.code_intelligence.jazzer.junit.FuzzTest;
import org.lora4j.train.FuzzScratch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes {@code tokenizer.json} loading ({@link Tokenizers#load}: lora4j's byte tokenizer or the native
 * Hugging Face library through DJL). Any file ends in a tokenizer that encodes a ChatML string (or
 * refuses it with an IllegalArgumentException naming the file), or in an IOException whose one-line
 * message names the file; a crash or hang of the native library fails
 * the run. The committed corpus runs in the normal build.
 */
class TokenizersFuzzTest {
    private static final Path DIR = FuzzScratch.dir("lora4j-fuzz-tokenizer", "tokenizer.json");

    @FuzzTest(maxDuration = "4m")
    void tokenizerJson(byte[] bytes) throws IOException {
        Path file = DIR.resolve("tokenizer.json");
        Files.write(file, bytes);
        Tokenizer tokenizer;
        try {
            tokenizer = Tokenizers.load(file);
        } catch (IOException e) {
            assertNotNull(e.getMessage(), () -> "no message: " + e);
            assertTrue(e.getMessage().contains(file.toString()), () -> "the message does not name the file: " + e);
            assertTrue(!e.getMessage().contains("\n"), () -> "the message is not one line: " + e);
            return;
        }
        try {
            int[] ids;
            try {
                ids = tokenizer.encode("<|im_start|>user\nhello world é 日本\n<|im_end|>");
            } catch (IllegalArgumentException e) {
                // a tokenizer that cannot encode this text (no unk token, say) must say so, naming its file
                assertNotNull(e.getMessage(), () -> "no message: " + e);
                assertTrue(e.getMessage().contains(file.toString()), () -> "the message does not name the file: " + e);
                return;
            }
            for (int id : ids) {
                assertTrue(id >= 0 && id < tokenizer.vocabSize(),
                        () -> "id " + id + " outside [0, " + tokenizer.vocabSize() + ")");
            }
            assertNotNull(tokenizer.decode(ids));
            assertTrue(tokenizer.vocabSize() >= 1);
            if (tokenizer instanceof ByteTokenizer) {
                assertEquals(ByteTokenizer.VOCAB_SIZE, tokenizer.vocabSize());
            }
        } finally {
            if (tokenizer instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }
}

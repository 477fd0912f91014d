package org.lora4j.train.data;

import com.code_intelligence.jazzer.junit.FuzzTest;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.FuzzScratch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes the data readers with whole files: any input ends in a dataset or in the reader's own
 * exception (IOException, IllegalArgumentException) whose message names the file. Without
 * {@code JAZZER_FUZZ=1} the committed corpus under {@code DatasetFuzzTestInputs} runs as regression
 * tests; with it, each target fuzzes for {@code maxDuration} (docs/reliability.md has the command).
 */
class DatasetFuzzTest {
    private static final ByteTokenizer TOKENIZER = new ByteTokenizer();
    private static final Path DIR = FuzzScratch.dir("lora4j-fuzz-data", "data.jsonl", "corpus.txt");

    /** JSONL data, chat and text lines; odd-length inputs refuse over-long lines, even-length ones truncate. */
    @FuzzTest(maxDuration = "4m")
    void jsonlFile(byte[] bytes) throws IOException {
        Path file = DIR.resolve("data.jsonl");
        Files.write(file, bytes);
        Dataset.Overflow overflow = bytes.length % 2 == 1 ? Dataset.Overflow.REFUSE : Dataset.Overflow.TRUNCATE;
        try {
            Dataset d = Dataset.load(file, TOKENIZER, 48, overflow);
            assertTrue(d.size() > 0);
            assertEquals(d.size(), d.lines().size());
            for (int i = 0; i < d.size(); i++) {
                assertTrue(d.examples().get(i).length() <= 48, "an example is longer than the maximum");
                assertTrue(i == 0 || d.lines().get(i) > d.lines().get(i - 1), "lines out of order");
            }
            assertEquals(sha256(bytes), d.sha256(), "the hash must be that of the file's bytes");
        } catch (IOException | IllegalArgumentException e) {
            namesTheFile(e, file);
        }
    }

    /** A plain-text corpus (paragraphs between blank lines). */
    @FuzzTest(maxDuration = "4m")
    void textCorpus(byte[] bytes) throws IOException {
        Path file = DIR.resolve("corpus.txt");
        Files.write(file, bytes);
        try {
            Dataset d = Dataset.loadText(file, TOKENIZER, 48, Dataset.Overflow.TRUNCATE);
            assertTrue(d.size() > 0);
            for (int line : d.lines()) {
                assertTrue(line >= 1, "line numbers start at 1");
            }
        } catch (IOException | IllegalArgumentException e) {
            namesTheFile(e, file);
        }
    }

    static void namesTheFile(Exception e, Path file) {
        assertNotNull(e.getMessage(), () -> "no message: " + e);
        assertTrue(e.getMessage().contains(file.toString()), () -> "the message does not name the file: " + e);
        assertTrue(!e.getMessage().contains("\n"), () -> "the message is not one line: " + e);
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}

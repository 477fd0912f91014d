package org.lora4j.train.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.text.ByteTokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DatasetTest {
    private final ByteTokenizer tok = new ByteTokenizer();

    private static Path write(Path dir, String... lines) throws IOException {
        Path f = dir.resolve("data.jsonl");
        Files.writeString(f, String.join("\n", lines) + "\n");
        return f;
    }

    private static String chat(String q, String a) {
        return "{\"messages\":[{\"role\":\"user\",\"content\":\"" + q + "\"},{\"role\":\"assistant\",\"content\":\"" + a + "\"}]}";
    }

    @Test
    void chatLinesScoreOnlyTheAssistantAndTextLinesScoreEverything(@TempDir Path dir) throws IOException {
        Dataset d = Dataset.load(write(dir, chat("hi", "yo"), "", chat("a", "b")), tok, 100, Dataset.Overflow.REFUSE);
        assertEquals(2, d.size());
        assertEquals(List.of(1, 3), d.lines());
        // "yo" + <|im_end|> are the assistant's targets
        assertEquals(3, d.examples().get(0).targetCount());
        assertEquals(64, d.sha256().length());
        Dataset t = Dataset.load(write(dir, "{\"text\":\"abc\"}"), tok, 100, Dataset.Overflow.REFUSE);
        assertEquals(t.examples().get(0).length(), t.examples().get(0).targetCount());
    }

    @Test
    void malformedLinesNameFileAndLine(@TempDir Path dir) throws IOException {
        Path f = write(dir, chat("a", "b"), "{\"messages\": [ {\"role\": \"user\"", chat("c", "d"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Dataset.load(f, tok, 100, Dataset.Overflow.REFUSE));
        assertTrue(e.getMessage().startsWith(f + ":2: not valid JSON"), e.getMessage());
        Path g = write(dir, "{\"prompt\": \"x\"}");
        e = assertThrows(IllegalArgumentException.class, () -> Dataset.load(g, tok, 100, Dataset.Overflow.REFUSE));
        assertTrue(e.getMessage().contains(":1:") && e.getMessage().contains("prompt"), e.getMessage());
        Path h = write(dir, "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}");
        e = assertThrows(IllegalArgumentException.class, () -> Dataset.load(h, tok, 100, Dataset.Overflow.REFUSE));
        assertTrue(e.getMessage().contains(":1:") && e.getMessage().contains("robot"), e.getMessage());
    }

    @Test
    void overLongLinesAreTruncatedAndCountedOrRefused(@TempDir Path dir) throws IOException {
        String longAnswer = "x".repeat(200);
        Path f = write(dir, chat("q", "short"), chat("q", longAnswer));
        Dataset d = Dataset.load(f, tok, 64, Dataset.Overflow.TRUNCATE);
        assertEquals(1, d.truncated());
        assertEquals(64, d.examples().get(1).length());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Dataset.load(f, tok, 64, Dataset.Overflow.REFUSE));
        assertTrue(e.getMessage().contains(":2:") && e.getMessage().contains("64"), e.getMessage());
    }

    @Test
    void splitIsSeededAndDisjoint(@TempDir Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            lines.add(chat("q" + i, "a" + i));
        }
        Dataset d = Dataset.load(write(dir, lines.toArray(String[]::new)), tok, 100, Dataset.Overflow.REFUSE);
        Dataset[] s1 = d.split(0.1, 7);
        Dataset[] s2 = d.split(0.1, 7);
        Dataset[] s3 = d.split(0.1, 8);
        assertEquals(45, s1[0].size());
        assertEquals(5, s1[1].size());
        assertEquals(s1[1].lines(), s2[1].lines());
        assertNotEquals(s1[1].lines(), s3[1].lines());
        Set<Integer> all = new HashSet<>(s1[0].lines());
        all.addAll(s1[1].lines());
        assertEquals(50, all.size());
        assertEquals(50, d.split(0, 7)[0].size());
    }

    @Test
    void paddedBatchesAreSeededAndPaddingIsNeverATarget(@TempDir Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            lines.add(chat("question " + i, "a".repeat(i + 1)));
        }
        Dataset d = Dataset.load(write(dir, lines.toArray(String[]::new)), tok, 200, Dataset.Overflow.REFUSE);
        Batcher b = new Batcher(d, 4, 200, false, 256, 3);
        int longest = d.examples().stream().mapToInt(e -> e.length()).max().orElseThrow();
        assertEquals(longest, b.seq());
        List<Batch> e0 = b.epoch(0);
        assertEquals(3, e0.size());
        assertEquals(2, e0.get(2).batch(), "last batch is partial, not dropped");
        assertArrayEquals(e0.get(0).tokens(), b.epoch(0).get(0).tokens(), "same epoch, same order");
        assertFalse(java.util.Arrays.equals(e0.get(0).tokens(), b.epoch(1).get(0).tokens()), "epochs reshuffle");
        int targets = 0;
        for (Batch batch : e0) {
            for (int i = 0; i < batch.tokens().length; i++) {
                if (batch.tokens()[i] == 256 && i % batch.seq() > 0 && batch.tokens()[i - 1] == 256) {
                    assertFalse(batch.lossMask()[i], "padding scored at " + i);
                }
            }
            targets += batch.targets();
        }
        int expected = d.examples().stream().mapToInt(e -> e.targetCount()).sum();
        assertEquals(expected, targets, "every example's targets are scored exactly once per epoch");
    }

    @Test
    void packedRowsAreFullAndKeepAllTokens(@TempDir Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            lines.add("{\"text\":\"" + "w".repeat(5 + i) + "\"}");
        }
        Dataset d = Dataset.load(write(dir, lines.toArray(String[]::new)), tok, 200, Dataset.Overflow.REFUSE);
        Batcher b = new Batcher(d, 2, 16, true, 0, 1);   // byte 0 never occurs in the text: a visible pad
        int total = d.examples().stream().mapToInt(e -> e.length()).sum();
        int seen = 0;
        for (Batch batch : b.epoch(0)) {
            assertEquals(16, batch.seq());
            for (int t : batch.tokens()) {
                seen += t == 0 ? 0 : 1;
            }
        }
        assertEquals(total, seen);
    }
}

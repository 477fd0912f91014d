package org.lora4j.train.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.text.ByteTokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** {@link Dataset#loadText}: the plain-text corpus the command line used to read with Files.readString. */
class DatasetTextCorpusTest {
    private final ByteTokenizer tok = new ByteTokenizer();

    @Test
    void paragraphsKeepTheirStartingLineAndTheHashOfTheOldSplit(@TempDir Path dir) throws IOException {
        String text = "\n\nfirst paragraph\nstill first\n\n  \n second\r\n\r\nthird\n\n\n";
        Path f = dir.resolve("corpus.txt");
        Files.writeString(f, text);
        Dataset d = Dataset.loadText(f, tok, 100, Dataset.Overflow.REFUSE);
        assertEquals(List.of(3, 7, 9), d.lines());
        // The split and the hash the command line made before (text.split("\\n\\s*\\n"), strip, fromTexts):
        List<String> paragraphs = new ArrayList<>();
        for (String p : text.split("\\n\\s*\\n")) {
            if (!p.isBlank()) {
                paragraphs.add(p.strip());
            }
        }
        Dataset old = Dataset.fromTexts(f, paragraphs, tok, 100, Dataset.Overflow.REFUSE);
        assertEquals(old.sha256(), d.sha256());
        assertEquals(old.size(), d.size());
        for (int i = 0; i < d.size(); i++) {
            assertArrayEquals(old.examples().get(i).ids(), d.examples().get(i).ids());
        }
    }

    @Test
    void errorsNameFileLineAndByteOffset(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("corpus.txt");
        byte[] head = "one\n\ntwo ".getBytes(StandardCharsets.US_ASCII);
        byte[] bytes = new byte[head.length + 2];
        System.arraycopy(head, 0, bytes, 0, head.length);
        bytes[head.length] = (byte) 0x96;     // a Windows-1252 dash
        bytes[head.length + 1] = '\n';
        Files.write(f, bytes);
        // Before (the command line's Files.readString): "Input length = 1"
        assertEquals(f + ":3: invalid UTF-8 at byte offset " + head.length + " (0x96); the file must be UTF-8 encoded",
                assertThrows(IOException.class, () -> Dataset.loadText(f, tok, 100, Dataset.Overflow.REFUSE)).getMessage());
        assertEquals(dir + " is a directory; expected a plain-text corpus (paragraphs separated by blank lines) such as "
                + f, assertThrows(IOException.class, () -> Dataset.loadText(dir, tok, 100, Dataset.Overflow.REFUSE)).getMessage());
        Files.writeString(f, " \n\n \n");
        assertEquals(f + ": no examples: it holds only white space; expected paragraphs of text separated by blank lines",
                assertThrows(IllegalArgumentException.class,
                        () -> Dataset.loadText(f, tok, 100, Dataset.Overflow.REFUSE)).getMessage());
        Files.writeString(f, "short\n\n" + "x".repeat(300) + "\n");
        assertEquals(f + ":3: 301 tokens, more than the maximum length 100 (raise it, or choose truncation)",
                assertThrows(IllegalArgumentException.class,
                        () -> Dataset.loadText(f, tok, 100, Dataset.Overflow.REFUSE)).getMessage());
    }
}

package org.lora4j.train.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.text.ByteTokenizer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every way a data file can be wrong gives a message naming the file, the line and what is there
 * (issue 7: "Errors that name the file, line and value").
 */
class DatasetFileErrorsTest {
    private final ByteTokenizer tok = new ByteTokenizer();

    private static final String GOOD = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
            + "{\"role\":\"assistant\",\"content\":\"yo\"}]}";

    private static Path write(Path dir, String text) throws IOException {
        Path f = dir.resolve("data.jsonl");
        Files.writeString(f, text);
        return f;
    }

    private String refused(Path f) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Dataset.load(f, tok, 100, Dataset.Overflow.REFUSE));
        return e.getMessage();
    }

    private static void contains(String message, String... parts) {
        for (String p : parts) {
            assertTrue(message.contains(p), "expected '" + p + "' in: " + message);
        }
    }

    @Test
    void aNonUtf8ByteIsNamedWithFileLineAndByteOffset(@TempDir Path dir) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes((GOOD + "\n").getBytes(StandardCharsets.UTF_8));          // line 1
        byte[] line2 = "{\"text\":\"caf".getBytes(StandardCharsets.US_ASCII);
        b.writeBytes(line2);
        long offset = b.size();
        b.write(0xE9);                                                          // Latin-1 é: not UTF-8
        b.writeBytes("\"}\n".getBytes(StandardCharsets.US_ASCII));
        Path f = dir.resolve("latin1.jsonl");
        Files.write(f, b.toByteArray());
        IOException e = assertThrows(IOException.class, () -> Dataset.load(f, tok, 100, Dataset.Overflow.REFUSE));
        assertEquals(f + ":2: invalid UTF-8 at byte offset " + offset + " (0xE9); the file must be UTF-8 encoded",
                e.getMessage());
    }

    @Test
    void aUtf16FileIsRefusedWithAHint(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("utf16.jsonl");
        Files.write(f, ("\uFEFF" + GOOD + "\n").getBytes(StandardCharsets.UTF_16LE));
        IOException e = assertThrows(IOException.class, () -> Dataset.load(f, tok, 100, Dataset.Overflow.REFUSE));
        contains(e.getMessage(), f + ":1: invalid UTF-8 at byte offset 0 (0xFF)", "UTF-16 byte order mark");
    }

    @Test
    void aDirectoryIsNamedAsOneWithTheFilesItHolds(@TempDir Path dir) throws IOException {
        Path data = Files.createDirectory(dir.resolve("data"));
        Files.writeString(data.resolve("train.jsonl"), GOOD + "\n");
        Files.writeString(data.resolve("eval.jsonl"), GOOD + "\n");
        IOException e = assertThrows(IOException.class, () -> Dataset.load(data, tok, 100, Dataset.Overflow.REFUSE));
        assertEquals(data + " is a directory; expected a JSONL data file (one JSON object per line) such as "
                + data.resolve("eval.jsonl") + " (it holds eval.jsonl, train.jsonl)", e.getMessage());
        Path empty = Files.createDirectory(dir.resolve("empty"));
        e = assertThrows(IOException.class, () -> Dataset.load(empty, tok, 100, Dataset.Overflow.REFUSE));
        assertEquals(empty + " is a directory; expected a JSONL data file (one JSON object per line)", e.getMessage());
    }

    @Test
    void aMissingFileIsNamed(@TempDir Path dir) {
        Path f = dir.resolve("nope.jsonl");
        IOException e = assertThrows(IOException.class, () -> Dataset.load(f, tok, 100, Dataset.Overflow.REFUSE));
        assertEquals(f + ": no such data file; expected a JSONL data file (one JSON object per line)", e.getMessage());
    }

    @Test
    void emptyAndBlankFilesSayWhy(@TempDir Path dir) throws IOException {
        assertEquals(dir.resolve("data.jsonl") + ": no examples: the file is empty; expected one JSON object per line,"
                + " such as {\"messages\": [...]} or {\"text\": ...} (the formats are messages, sharegpt,"
                + " prompt/completion, alpaca and text)",
                refused(write(dir, "")));
        contains(refused(write(dir, "\n  \n\t\n")), "data.jsonl: no examples: all 3 lines are blank");
    }

    @Test
    void aLineThatIsNotAnObjectNamesWhatItIs(@TempDir Path dir) throws IOException {
        Path f = write(dir, GOOD + "\n[1, 2]\n");
        assertEquals(f + ":2: expected a JSON object (one example per line), got an array [1,2]", refused(f));
        assertEquals(f + ":1: expected a JSON object (one example per line), got a string \"hello\"",
                refused(write(dir, "\"hello\"\n")));
        contains(refused(write(dir, "{}")), f + ":1: no data format fits this line, which has no keys (an empty object);"
                + " expected the keys of one of: messages {\"messages\"}, ");
    }

    @Test
    void wrongTypesInsideAChatNameThePathAndTheValue(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("data.jsonl");
        assertEquals(f + ":1: \"messages\" must be a non-empty array of {\"role\", \"content\"} objects, got a string \"hi\"",
                refused(write(dir, "{\"messages\": \"hi\"}")));
        assertEquals(f + ":1: messages[1] must be an object with string \"role\" and \"content\", got a number 5",
                refused(write(dir, "{\"messages\": [{\"role\":\"user\",\"content\":\"q\"}, 5]}")));
        assertEquals(f + ":1: messages[0].role must be a string, got a number 7",
                refused(write(dir, "{\"messages\": [{\"role\":7,\"content\":\"q\"}]}")));
        assertEquals(f + ":1: messages[0].content must be a string, got null",
                refused(write(dir, "{\"messages\": [{\"role\":\"user\",\"content\":null}]}")));
        assertEquals(f + ":1: messages[0].content must be a string, got nothing (no such key)",
                refused(write(dir, "{\"messages\": [{\"role\":\"user\"}]}")));
        assertEquals(f + ":1: messages[0]: role must be one of system, user, assistant; got 'robot'",
                refused(write(dir, "{\"messages\": [{\"role\":\"robot\",\"content\":\"x\"}]}")));
        assertEquals(f + ":1: messages[0]: role must be one of system, user, assistant; got 'ro\\nbot'",
                refused(write(dir, "{\"messages\": [{\"role\":\"ro\\nbot\",\"content\":\"x\"}]}")));
        contains(refused(write(dir, "{\"a\\nb\": 1}")), f + ":1: no data format fits this line, which has the key 'a\\nb';");
        assertEquals(f + ":1: \"text\" must be a string, got an object {\"a\":1}",
                refused(write(dir, "{\"text\": {\"a\": 1}}")));
    }

    @Test
    void textAfterTheObjectAndRepeatedKeysAreRefusedNotDropped(@TempDir Path dir) throws IOException {
        // Before: the first object was kept and the second silently dropped.
        Path f = write(dir, "{\"text\":\"a\"} {\"text\":\"b\"}\n");
        assertEquals(f + ":1: not valid JSON at column 14: more JSON after the first value (one value per line of JSONL,"
                + " one per JSON file)", refused(f));
        // Before: the last "text" silently won.
        contains(refused(write(dir, "{\"text\":\"a\",\"text\":\"b\"}\n")), ":1: not valid JSON at column ",
                "Duplicate field 'text'");
    }

    @Test
    void crlfAndAByteOrderMarkAreRead(@TempDir Path dir) throws IOException {
        byte[] body = ("\uFEFF" + GOOD + "\r\n\r\n" + GOOD + "\r\n").getBytes(StandardCharsets.UTF_8);
        Path f = dir.resolve("windows.jsonl");
        Files.write(f, body);
        Dataset d = Dataset.load(f, tok, 100, Dataset.Overflow.REFUSE);
        assertEquals(List.of(1, 3), d.lines());
        // The hash stays that of the file's bytes, byte order mark included.
        try {
            assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(body)), d.sha256());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void aBadLineAfterAGoodOneNamesItsLineWithCrlf(@TempDir Path dir) throws IOException {
        Path f = write(dir, GOOD + "\r\n" + GOOD + "\r\n{\"messages\": 3}\r\n");
        assertEquals(f + ":3: \"messages\" must be a non-empty array of {\"role\", \"content\"} objects, got a number 3",
                refused(f));
    }
}

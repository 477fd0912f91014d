package org.lora4j.train.text;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TextFilesTest {

    private static List<String> lines(Path f) throws IOException {
        List<String> out = new ArrayList<>();
        TextFiles.forEachLine(f, "test file", null, (n, offset, text) -> out.add(n + "@" + offset + ":" + text));
        return out;
    }

    @Test
    void linesEndAtLfCrlfAndLoneCrAsAnEditorCountsThem(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("t.txt");
        Files.write(f, "\uFEFFa\nb\r\nc\rd\n\ne".getBytes(StandardCharsets.UTF_8));
        // offsets are of bytes in the file: the byte order mark is 3 bytes, "\r\n" 2
        assertEquals(List.of("1@0:a", "2@5:b", "3@8:c", "4@10:d", "5@12:", "6@13:e"), lines(f));
        assertEquals("a\nb\r\nc\rd\n\ne", TextFiles.readUtf8(f, "test file"));
    }

    @Test
    void aBadByteFarIntoALongLineIsLocatedAcrossReadBuffers(@TempDir Path dir) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes("first\r\n".getBytes(StandardCharsets.US_ASCII));
        b.writeBytes("é".repeat(50_000).getBytes(StandardCharsets.UTF_8));   // 100,000 bytes, past a 64 kB buffer
        int offset = b.size();
        b.write(0xE2);
        b.write(0x82);                      // a 3-byte sequence cut short by the next ASCII byte
        b.writeBytes("x\n".getBytes(StandardCharsets.US_ASCII));
        Path f = dir.resolve("t.txt");
        Files.write(f, b.toByteArray());
        String expected = f + ":2: invalid UTF-8 at byte offset " + offset + " (0xE2 0x82); the file must be UTF-8 encoded";
        assertEquals(expected, assertThrows(IOException.class, () -> lines(f)).getMessage());
        assertEquals(expected, assertThrows(IOException.class, () -> TextFiles.readUtf8(f, "test file")).getMessage());
    }

    @Test
    void encodedSurrogatesAndOverlongFormsAreRefused(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("t.txt");
        Files.write(f, new byte[] {'a', '\n', (byte) 0xED, (byte) 0xA0, (byte) 0x80});   // U+D800 in UTF-8 form
        assertEquals(f + ":2: invalid UTF-8 at byte offset 2 (0xED 0xA0 0x80); the file must be UTF-8 encoded",
                assertThrows(IOException.class, () -> TextFiles.readUtf8(f, "test file")).getMessage());
        Files.write(f, new byte[] {(byte) 0xC0, (byte) 0xAF});                          // overlong '/'
        assertEquals(f + ":1: invalid UTF-8 at byte offset 0 (0xC0); the file must be UTF-8 encoded",
                assertThrows(IOException.class, () -> lines(f)).getMessage());
    }

    @Test
    void directoriesAndMissingFilesAreNamed(@TempDir Path dir) {
        assertEquals(dir + " is a directory, not a test file",
                assertThrows(IOException.class, () -> TextFiles.readUtf8(dir, "test file")).getMessage());
        Path missing = dir.resolve("nope");
        assertEquals(missing + ": no such test file",
                assertThrows(NoSuchFileException.class, () -> lines(missing)).getMessage());
    }
}

package org.lora4j.core;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AtomicFilesTest {
    @TempDir
    Path tmp;

    private List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void writesAndReplaces() throws IOException {
        Path f = tmp.resolve("a.json");
        AtomicFiles.writeString(f, "first");
        AtomicFiles.writeString(f, "second é");
        assertEquals("second é", Files.readString(f, StandardCharsets.UTF_8));
        AtomicFiles.write(f, new byte[]{1, 2, 3});
        assertArrayEquals(new byte[]{1, 2, 3}, Files.readAllBytes(f));
        assertEquals(List.of("a.json"), names(tmp), "no temporary file left");
    }

    @Test
    void failingWriteLeavesThePreviousFileAndNoTemp() throws IOException {
        Path f = tmp.resolve("model.safetensors");
        AtomicFiles.writeString(f, "good");
        IOException boom = new IOException("disk full");
        IOException e = assertThrows(IOException.class, () -> AtomicFiles.write(f, channel -> {
            channel.write(ByteBuffer.wrap("half of the new".getBytes(StandardCharsets.UTF_8)));
            throw boom;
        }));
        assertSame(boom, e);
        assertEquals("good", Files.readString(f));
        assertEquals(List.of("model.safetensors"), names(tmp));

        RuntimeException r = assertThrows(RuntimeException.class, () -> AtomicFiles.write(f, channel -> {
            throw new IllegalStateException("bug");
        }));
        assertEquals("bug", r.getMessage());
        assertEquals("good", Files.readString(f));
        assertEquals(List.of("model.safetensors"), names(tmp));
    }

    @Test
    void failingCommitDeletesTheTemp() throws IOException {
        // The target is a non-empty directory: the rename over it fails after the temp is complete.
        Path target = tmp.resolve("taken");
        Files.createDirectories(target.resolve("inside"));
        assertThrows(IOException.class, () -> AtomicFiles.writeString(target, "x"));
        assertEquals(List.of("taken"), names(tmp));
        assertTrue(Files.isDirectory(target.resolve("inside")));
    }

    @Test
    void directoryAppearsWholeOrNotAtAll() throws IOException {
        Path target = tmp.resolve("step-000002");
        AtomicFiles.writeDirectory(target, ".tmp-step-", d -> {
            Files.writeString(d.resolve("a"), "1");
            Files.writeString(d.resolve("b"), "2");
        });
        assertEquals(List.of("a", "b"), names(target));

        IOException e = assertThrows(IOException.class, () -> AtomicFiles.writeDirectory(target, ".tmp-step-", d -> {
            Files.writeString(d.resolve("a"), "new");
            throw new IOException("no space");
        }));
        assertEquals("no space", e.getMessage());
        assertEquals("1", Files.readString(target.resolve("a")), "the previous directory is untouched");
        assertEquals(List.of("step-000002"), names(tmp), "no temporary directory left");

        AtomicFiles.writeDirectory(target, ".tmp-step-", d -> Files.writeString(d.resolve("c"), "3"));
        assertEquals(List.of("c"), names(target), "a successful write replaces the old directory");
    }

    @Test
    void deleteTreeRemovesEverythingAndIgnoresMissing() throws IOException {
        Path d = tmp.resolve("x");
        Files.createDirectories(d.resolve("y/z"));
        Files.writeString(d.resolve("y/z/f"), "f");
        AtomicFiles.deleteTree(d);
        assertFalse(Files.exists(d));
        AtomicFiles.deleteTree(d);
    }
}

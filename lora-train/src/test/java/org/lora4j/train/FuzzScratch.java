package org.lora4j.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** A temporary directory a fuzz target writes its input files into, removed when the JVM exits. */
public final class FuzzScratch {
    private FuzzScratch() {
    }

    /**
     * @param files the names the target writes; registered after the directory so they are deleted
     *              before it (deleteOnExit runs in reverse order and removes only empty directories)
     */
    public static Path dir(String prefix, String... files) {
        try {
            Path dir = Files.createTempDirectory(prefix);
            dir.toFile().deleteOnExit();
            for (String f : files) {
                dir.resolve(f).toFile().deleteOnExit();
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}

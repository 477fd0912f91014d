package org.lora4j.core;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Every file lora4j writes goes through here: written whole to a hidden temporary sibling, forced to
 * disk, then renamed over the target in one atomic step. A write that fails (full disk, exception,
 * crash) leaves the previous file as it was, and readers never see half a file. A failed write
 * deletes its temporary file; only a killed process can leave one ({@code .<name>.<random>.tmp})
 * behind.
 *
 * <p>Outputs of several files that must appear together (a checkpoint) are written into a temporary
 * directory and renamed into place the same way ({@link #writeDirectory}).
 */
public final class AtomicFiles {
    private static final Logger LOG = LoggerFactory.getLogger(AtomicFiles.class);

    private AtomicFiles() {
    }

    /** Writes the bytes of one file into an open channel; the channel is forced and closed afterwards. */
    @FunctionalInterface
    public interface ChannelWriter {
        void write(FileChannel channel) throws IOException;
    }

    /** Fills a temporary directory with the files of one output. */
    @FunctionalInterface
    public interface DirectoryWriter {
        void write(Path tempDirectory) throws IOException;
    }

    /** Replaces {@code file} with {@code bytes} atomically. */
    public static void write(Path file, byte[] bytes) throws IOException {
        commit(writeTemp(file, bytes), file);
    }

    /** Replaces {@code file} with {@code text} in UTF-8, atomically. */
    public static void writeString(Path file, String text) throws IOException {
        write(file, text.getBytes(StandardCharsets.UTF_8));
    }

    /** Replaces {@code file} with what {@code writer} writes, atomically. */
    public static void write(Path file, ChannelWriter writer) throws IOException {
        commit(writeTemp(file, writer), file);
    }

    /**
     * Makes the directory {@code target} from what {@code writer} puts into a new temporary directory
     * next to it (named {@code <tempPrefix><random>}), then renames that into place. An existing
     * {@code target} is deleted first, so callers use this only where the old content may go (a
     * checkpoint of the same step written again); a failure leaves no temporary directory behind.
     */
    public static void writeDirectory(Path target, String tempPrefix, DirectoryWriter writer) throws IOException {
        Path parent = target.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path temp = Files.createTempDirectory(parent, tempPrefix);
        try {
            writer.write(temp);
            if (Files.exists(target)) {
                deleteTree(target);
            }
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | RuntimeException | Error e) {
            try {
                deleteTree(temp);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
        forceDirectory(parent);
    }

    /**
     * Writes the complete file to a new temporary sibling of {@code file}, forced to disk, and returns
     * its path; {@link #commit} then puts it in place. On failure the temporary file is deleted.
     * Two steps, so a caller can write several files before it commits any of them.
     */
    static Path writeTemp(Path file, ChannelWriter writer) throws IOException {
        Path temp = createTempSibling(file);
        try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.WRITE)) {
            writer.write(channel);
            channel.force(true);   // the data must be on disk before the rename makes it the file
        } catch (IOException | RuntimeException | Error e) {
            deleteQuietly(temp, e);
            throw e;
        }
        return temp;
    }

    /** {@link #writeTemp(Path, ChannelWriter)} of a byte array. */
    static Path writeTemp(Path file, byte[] bytes) throws IOException {
        return writeTemp(file, channel -> writeFully(channel, ByteBuffer.wrap(bytes)));
    }

    /** Renames a finished temporary file over {@code file} atomically; deletes it if that fails. */
    static void commit(Path temp, Path file) throws IOException {
        Path target = file.toAbsolutePath();
        try {
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            deleteQuietly(temp, e);
            throw e;
        }
        forceDirectory(target.getParent());
    }

    /** Persists a rename. Best effort: some platforms (Windows) cannot open a directory. */
    private static void forceDirectory(Path dir) {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            LOG.debug("could not fsync directory {}", dir);
        }
    }

    /**
     * Creates an empty hidden sibling of {@code file} with a random name. Same directory, so the
     * final rename stays on one file system and can be atomic; created with the default permissions
     * (not {@code createTempFile}'s owner-only ones), so the saved file is as readable as any other.
     */
    private static Path createTempSibling(Path file) throws IOException {
        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        while (true) {
            String name = "." + target.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp";
            try {
                return Files.createFile(dir.resolve(name));
            } catch (FileAlreadyExistsException collision) {
                // another random name
            }
        }
    }

    static void deleteQuietly(Path temp, Throwable cause) {
        try {
            Files.deleteIfExists(temp);
        } catch (IOException e) {
            cause.addSuppressed(e);
        }
    }

    static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    /** Deletes a file or a directory with everything in it; nothing when it does not exist. */
    public static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        List<Path> all;
        try (var walk = Files.walk(p)) {
            all = walk.sorted(Comparator.reverseOrder()).toList();
        }
        for (Path q : all) {
            Files.deleteIfExists(q);
        }
    }
}

package org.lora4j.train.trainer;

import org.lora4j.core.AtomicFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.stream.Stream;

/**
 * An output directory owned by one run: the training run of {@link Trainer}, or a merge. Opening it
 * enforces the rules that keep a run's files from being lost or mixed with another's:
 * <ul>
 *   <li>it is a directory (created if missing), not a file, and neither equal to, inside, nor
 *       containing an input (a model, an adapter, a data file), so a run never writes over what it reads;</li>
 *   <li>one process at a time: {@value #LOCK_FILE} is held with an OS file lock until {@link #close()}
 *       (or the process ends, however it ends). A second process is refused with the holder's pid and
 *       start time. A lock file whose lock nobody holds was left by a crash; it is taken over with a warning;</li>
 *   <li>a non-empty directory is refused ({@link Mode#NEW}) unless the run continues it
 *       ({@link Mode#RESUME}, which removes the temporary files a crash can leave mid-write) or the
 *       user asks to start again ({@link Mode#OVERWRITE}, which clears it first, but only a directory
 *       lora4j wrote: one holding a command's record, {@link #RECORDS}).</li>
 * </ul>
 * That a resumed directory holds this run and not another is checked by {@link Trainer#resumeFrom}
 * through the run id.
 */
public final class RunDirectory implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RunDirectory.class);
    /** The lock file, in the directory it guards; empty when no run holds it. */
    public static final String LOCK_FILE = ".lora4j.lock";
    static final String RUN_JSON = "run.json";
    static final String MERGE_JSON = "lora4j_merge.json";
    /**
     * The record each lora4j command writes into its --out (training runs, merge, eval,
     * compare-directions, trajectory): a directory holding one of them is lora4j's own output, which
     * --overwrite may clear.
     */
    static final List<String> RECORDS = List.of(RUN_JSON, MERGE_JSON, "eval.json", "compare.json", "trajectory.json");

    /** How a run may treat a directory that already holds something. */
    public enum Mode {
        /** Only an empty or missing directory. */
        NEW,
        /** Clears a directory lora4j wrote, then starts as new. */
        OVERWRITE,
        /** Continues the run in the directory (checked by {@link Trainer#resumeFrom}). */
        RESUME
    }

    /**
     * A path the run reads, named as the user gave it.
     *
     * @param option how the user named it, e.g. {@code --model}
     * @param path   a directory, or a file (a data file); null when the option was not given
     */
    public record Input(String option, Path path) {
        public Input {
            Objects.requireNonNull(option, "option");
        }
    }

    /** Another process (or another run in this one) holds the directory's lock. */
    public static final class InUseException extends IOException {
        InUseException(String message) {
            super(message);
        }
    }

    private final Path dir;
    private final FileChannel channel;
    private final FileLock lock;
    private final String staleHolder;
    private boolean created;   // open() made the directory, so a run that wrote nothing removes it again

    private RunDirectory(Path dir, FileChannel channel, FileLock lock, String staleHolder) {
        this.dir = dir;
        this.channel = channel;
        this.lock = lock;
        this.staleHolder = staleHolder;
    }

    /**
     * Checks, creates and locks an output directory for a run.
     *
     * @param resumable whether the command can continue a run (training), for the advice in the refusal
     * @throws IllegalArgumentException when the directory is a file, overlaps an input, or holds
     *                                  something the mode does not allow
     * @throws IOException              when another process holds it, or it cannot be created or locked
     */
    public static RunDirectory open(Path out, Mode mode, List<Input> inputs, boolean resumable) throws IOException {
        Objects.requireNonNull(mode, "mode");
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new IllegalArgumentException("output directory " + out + " is a file, not a directory; choose a directory"
                    + " (it is created if missing)");
        }
        checkOverlap(out, inputs);
        boolean existed = Files.isDirectory(out);
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw Trainer.naming(out, e);
        }
        RunDirectory rd = lock(out);
        rd.created = !existed;
        try {
            List<Path> entries = entries(out);
            if (!entries.isEmpty()) {
                switch (mode) {
                    case NEW -> throw new IllegalArgumentException("output directory " + out + " is not empty: it holds "
                            + describe(out, entries) + ". " + (resumable
                            ? "Add --resume to continue that run, --overwrite to delete it and start again, or choose another --out."
                            : "Add --overwrite to delete it and write again, or choose another --out."));
                    case OVERWRITE -> clear(out, entries);
                    case RESUME -> removeLeftovers(out);
                }
            }
            return rd;
        } catch (IOException | RuntimeException e) {
            rd.close();
            throw e;
        }
    }

    public Path path() {
        return dir;
    }

    /** The holder named by a stale lock this run took over ("pid 12, started ..."), or null. */
    public String staleLockHolder() {
        return staleHolder;
    }

    /**
     * Empties the lock file (so a later run does not take it for a crash's) and releases the lock. A
     * command that failed before writing anything (bad input found after the directory was opened)
     * leaves nothing behind: the lock file goes, and the directory too if this run created it.
     */
    @Override
    public void close() throws IOException {
        if (!channel.isOpen()) {
            return;
        }
        try {
            channel.truncate(0);
            if (entries(dir).isEmpty()) {
                Files.deleteIfExists(dir.resolve(LOCK_FILE));   // while still locked: nobody can be waiting on it
                if (created) {
                    Files.deleteIfExists(dir);
                }
            }
            lock.release();
        } finally {
            channel.close();
        }
    }

    // ---------------------------------------------------------------------------------------------

    /** Whether {@code p} is {@code dir} or inside it, symbolic links resolved. */
    public static boolean isWithin(Path p, Path dir) throws IOException {
        return real(p).startsWith(real(dir));
    }

    /** An absolute path with symbolic links resolved as far as it exists, so two names of one directory compare equal. */
    static Path real(Path p) throws IOException {
        Path abs = p.toAbsolutePath().normalize();
        Path existing = abs;
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        return existing == null ? abs : existing.toRealPath().resolve(existing.relativize(abs));
    }

    private static void checkOverlap(Path out, List<Input> inputs) throws IOException {
        Path o = real(out);
        for (Input in : inputs) {
            if (in.path() == null) {
                continue;
            }
            Path i = real(in.path());
            if (o.equals(i)) {
                throw new IllegalArgumentException("output directory " + out + " is the input " + in.option() + " "
                        + in.path() + ": lora4j never writes over what it reads; choose another --out");
            }
            if (Files.isDirectory(i) && o.startsWith(i)) {
                throw new IllegalArgumentException("output directory " + out + " is inside the input " + in.option() + " "
                        + in.path() + ": lora4j never writes into what it reads; choose another --out");
            }
            if (i.startsWith(o)) {
                throw new IllegalArgumentException("the input " + in.option() + " " + in.path() + " is inside the output directory "
                        + out + ", which the run owns (--overwrite would delete it); choose another --out");
            }
        }
    }

    private static RunDirectory lock(Path out) throws IOException {
        Path file = out.resolve(LOCK_FILE);
        FileChannel ch;
        try {
            ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw Trainer.naming(file, e);
        }
        try {
            FileLock lock;
            try {
                lock = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null;   // held by this very process (another run in the same JVM)
            }
            if (lock == null) {
                throw new InUseException("output directory " + out + " is in use by another lora4j run ("
                        + holder(readAll(ch)) + "); wait for it to end or choose another --out");
            }
            String previous = readAll(ch);
            String stale = previous.isBlank() ? null : holder(previous);
            if (stale != null) {
                log.warn("{}: stale lock of a run that did not end cleanly ({}); nobody holds it, taking it over",
                        file, stale);
            }
            ProcessHandle self = ProcessHandle.current();
            String started = self.info().startInstant().orElse(Instant.now()).toString();
            String text = "{\"pid\": " + self.pid() + ", \"started\": \"" + started + "\"}\n";
            ch.truncate(0);
            ch.write(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)), 0);
            ch.force(false);
            return new RunDirectory(out, ch, lock, stale);
        } catch (IOException e) {
            ch.close();
            throw e instanceof InUseException ? e : Trainer.naming(file, e);
        } catch (RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    private static String readAll(FileChannel ch) throws IOException {
        long size = Math.min(ch.size(), 4096);
        ByteBuffer b = ByteBuffer.allocate((int) size);
        while (b.hasRemaining() && ch.read(b, b.position()) > 0) {
            // read on
        }
        return new String(b.array(), 0, b.position(), StandardCharsets.UTF_8);
    }

    /** "pid 123, started 2026-..." from a lock file's text, or what can be said about it. */
    static String holder(String lockText) {
        try {
            JsonNode n = new ObjectMapper().readTree(lockText);
            if (n != null && n.has("pid")) {
                return "pid " + n.get("pid").asLong() + ", started " + n.path("started").asText("at an unknown time");
            }
        } catch (IOException e) {
            // not ours, or cut short: say so below
        }
        return lockText.isBlank() ? "holder unknown" : "holder unknown: lock file holds '" + lockText.strip() + "'";
    }

    /** The directory's entries other than the lock file. */
    private static List<Path> entries(Path dir) throws IOException {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                if (!p.getFileName().toString().equals(LOCK_FILE)) {
                    out.add(p);
                }
            }
        }
        out.sort(Comparator.naturalOrder());
        return out;
    }

    /** What a non-empty directory holds, for the refusal: the run in it, or a few of its names. */
    static String describe(Path dir, List<Path> entries) {
        Path runJson = dir.resolve(RUN_JSON);
        if (Files.isRegularFile(runJson)) {
            try {
                JsonNode r = new ObjectMapper().readTree(runJson.toFile());
                String command = r.path("provenance").path("command").asText("training");
                String id = r.path("run_id").asText("without a run id");
                JsonNode fin = r.get("final");
                String state;
                if (fin != null && fin.has("step")) {
                    state = "finished at step " + fin.get("step").asInt();
                } else {
                    List<Path> cps = new CheckpointStore(dir.resolve("checkpoints"), Integer.MAX_VALUE).list();
                    int at = cps.isEmpty() ? 0 : CheckpointStore.stepOf(cps.get(cps.size() - 1));
                    state = "not finished, " + (at == 0 ? "no checkpoint yet" : "checkpoint at step " + at) + " of "
                            + r.path("total_steps").asInt() + " steps";
                }
                return "a " + command + " run (run " + id + ", " + state + ")";
            } catch (IOException | RuntimeException e) {
                return "a run whose " + RUN_JSON + " cannot be read (" + e.getMessage() + ")";
            }
        }
        if (Files.isRegularFile(dir.resolve(MERGE_JSON))) {
            return "a merged model (" + MERGE_JSON + ")";
        }
        List<String> names = entries.stream().limit(3).map(p -> p.getFileName().toString()).toList();
        return entries.size() + " entr" + (entries.size() == 1 ? "y" : "ies") + " (" + String.join(", ", names)
                + (entries.size() > 3 ? ", ..." : "") + ")";
    }

    /** --overwrite: only what lora4j wrote is deleted; any other directory is refused. */
    private static void clear(Path dir, List<Path> entries) throws IOException {
        boolean ours = RECORDS.stream().anyMatch(r -> Files.isRegularFile(dir.resolve(r)))
                || entries.stream().allMatch(RunDirectory::isLeftover);
        if (!ours) {
            throw new IllegalArgumentException("output directory " + dir + " holds " + describe(dir, entries)
                    + " but none of " + String.join(", ", RECORDS) + ": it was not written by lora4j, and --overwrite"
                    + " deletes only lora4j's own output; empty it yourself or choose another --out");
        }
        String what = describe(dir, entries);
        for (Path p : entries) {
            AtomicFiles.deleteTree(p);
        }
        log.info("--overwrite: deleted what {} held: {}", dir, what);
    }

    /** A temporary file or checkpoint directory an interrupted write leaves (atomic writes go through these). */
    static boolean isLeftover(Path p) {
        String n = p.getFileName().toString();
        return n.startsWith(".") && (n.endsWith(".tmp") || n.startsWith(CheckpointStore.TMP_PREFIX));
    }

    /** Removes what a killed run left half-written; none of it is part of any completed write. */
    static List<Path> removeLeftovers(Path dir) throws IOException {
        List<Path> found;
        try (Stream<Path> walk = Files.walk(dir)) {
            found = walk.filter(p -> !p.equals(dir) && isLeftover(p)).sorted().toList();
        }
        List<Path> removed = new ArrayList<>();
        for (Path p : found) {
            if (removed.stream().noneMatch(p::startsWith)) {
                AtomicFiles.deleteTree(p);
                removed.add(p);
            }
        }
        if (!removed.isEmpty()) {
            log.warn("removed {} temporary file(s) left by an interrupted write: {}", removed.size(),
                    removed.stream().map(p -> dir.relativize(p).toString()).toList());
        }
        return removed;
    }
}

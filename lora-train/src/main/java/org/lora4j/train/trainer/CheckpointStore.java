package org.lora4j.train.trainer;

import org.lora4j.core.AtomicFiles;
import org.lora4j.core.Safetensors;
import org.lora4j.core.SafetensorsFile;
import org.nd4j.linalg.api.ndarray.INDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Training checkpoints: {@code checkpoints/step-000050/} holding {@code trainer_state.json} (magic,
 * format version, library version, step, data position, config), {@code weights.safetensors} (the
 * trainable tensors by name) and {@code optimizer.safetensors} (the moments). Each is written into a
 * temporary directory that is renamed into place only when complete, so a crash or a failed write
 * never leaves a partial checkpoint where a resume would find it; the newest {@code keep} are kept.
 * A checkpoint that cannot be read all the same (a disk that lost the tail of a file) is skipped by
 * {@link #loadNewest} in favour of the one before, with a warning naming it.
 */
final class CheckpointStore {
    private static final Logger log = LoggerFactory.getLogger(CheckpointStore.class);
    static final String MAGIC = "lora4j-checkpoint";
    /** 2: every checkpoint carries its run id ({@code run_id}) and whether the run stopped early. */
    static final int FORMAT_VERSION = 2;
    static final String STATE = "trainer_state.json";
    static final String WEIGHTS = "weights.safetensors";
    static final String OPTIMIZER = "optimizer.safetensors";
    private static final Pattern NAME = Pattern.compile("step-(\\d+)");
    /** A checkpoint being written; one left behind was cut by a crash (see {@link RunDirectory}). */
    static final String TMP_PREFIX = ".tmp-";

    private final Path dir;
    private final int keep;

    CheckpointStore(Path dir, int keep) {
        this.dir = dir;
        this.keep = keep;
    }

    /**
     * What {@code trainer_state.json} says, read and checked by {@link #readState}: every field the
     * resume needs is present and of its type, so a damaged file fails there, naming itself.
     */
    record State(JsonNode json, int step, int epoch, int batchInEpoch, int earlyStopCount, int optimizerSteps,
                 TrainConfig config, String runId, String baseFingerprint, String trainSha256) {
    }

    /** What a checkpoint holds. */
    record Loaded(Path path, State state, Map<String, INDArray> weights, Map<String, INDArray> optimizer) {
        int step() {
            return state.step();
        }
    }

    Path write(int step, ObjectNode state, Map<String, INDArray> weights, Map<String, INDArray> optimizer)
            throws IOException {
        String name = String.format("step-%06d", step);
        Path target = dir.resolve(name);
        ObjectNode s = state.deepCopy();
        s.put("magic", MAGIC);
        s.put("format_version", FORMAT_VERSION);
        s.put("library_version", Version.get());
        s.put("step", step);
        Map<String, String> meta = Map.of("lora4j_step", Integer.toString(step),
                "lora4j_run_id", state.path("run_id").asText());
        try {
            // An existing step-N is replaced: the same step again (a resumed run re-reaching it), same content.
            AtomicFiles.writeDirectory(target, TMP_PREFIX + name + "-", tmp -> {
                Safetensors.write(tmp.resolve(WEIGHTS), weights, meta);
                Safetensors.write(tmp.resolve(OPTIMIZER), optimizer, meta);
                // The state file last: a directory with a state file has its tensors.
                Files.writeString(tmp.resolve(STATE), new ObjectMapper().writerWithDefaultPrettyPrinter()
                        .writeValueAsString(s), StandardCharsets.UTF_8);
            });
            prune();
            return target;
        } catch (IOException e) {
            throw Trainer.naming(target, e);
        }
    }

    /** Checkpoints in this directory, oldest first. */
    List<Path> list() throws IOException {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                if (NAME.matcher(p.getFileName().toString()).matches() && Files.exists(p.resolve(STATE))) {
                    out.add(p);
                }
            }
        }
        out.sort(Comparator.comparingInt(CheckpointStore::stepOf));
        return out;
    }

    private void prune() throws IOException {
        List<Path> all = list();
        for (int i = 0; i < all.size() - keep; i++) {
            AtomicFiles.deleteTree(all.get(i));
        }
    }

    static int stepOf(Path p) {
        Matcher m = NAME.matcher(p.getFileName().toString());
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** Thrown by {@link #loadNewest} when a directory holds no checkpoint at all. */
    static final class NoCheckpointException extends IOException {
        NoCheckpointException(String message) {
            super(message);
        }
    }

    /**
     * The checkpoint at {@code path} (a checkpoint directory, read strictly), or the newest readable
     * one under a run's output directory (its {@code checkpoints/} folder) or under a checkpoints
     * folder. A newer checkpoint that cannot be read is skipped with a warning naming it; when none
     * can be read the newest one's error is thrown.
     *
     * @throws NoCheckpointException when there is no checkpoint at all
     */
    static Loaded loadNewest(Path path) throws IOException {
        if (Files.exists(path.resolve(STATE))) {
            return read(path);
        }
        for (Path candidate : List.of(path.resolve("checkpoints"), path)) {
            List<Path> all = new CheckpointStore(candidate, Integer.MAX_VALUE).list();
            IOException newestError = null;
            for (int i = all.size() - 1; i >= 0; i--) {
                try {
                    Loaded c = read(all.get(i));
                    if (newestError != null) {
                        log.warn("resuming from {} instead", c.path());
                    }
                    return c;
                } catch (IOException | RuntimeException e) {
                    // A damaged file found by a reader's own checks, or one a reader trips over: skip it either way.
                    log.warn("skipping checkpoint {}: cannot be read ({})", all.get(i), e.getMessage());
                    if (newestError == null) {
                        newestError = e instanceof IOException io ? io : new IOException(all.get(i) + ": " + e, e);
                    }
                }
            }
            if (newestError != null) {
                throw new IOException("no readable checkpoint in " + candidate + "; the newest failed with: "
                        + newestError.getMessage(), newestError);
            }
        }
        throw new NoCheckpointException(path + ": no checkpoint here (expected " + STATE + " or checkpoints/step-N/)");
    }

    static Loaded read(Path checkpoint) throws IOException {
        State state = readState(checkpoint.resolve(STATE));
        if (stepOf(checkpoint) >= 0 && stepOf(checkpoint) != state.step()) {
            throw new IOException(checkpoint.resolve(STATE) + ": says step " + state.step() + ", its directory "
                    + checkpoint.getFileName());
        }
        return new Loaded(checkpoint, state, readAll(checkpoint.resolve(WEIGHTS)), readAll(checkpoint.resolve(OPTIMIZER)));
    }

    /**
     * Reads and checks a {@code trainer_state.json}.
     *
     * @throws IOException naming the file for anything wrong in it: not JSON, another magic or format
     *                     version, a missing field or one of the wrong type, a config the trainer refuses
     */
    static State readState(Path stateFile) throws IOException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(stateFile);
        } catch (IOException e) {
            throw Trainer.naming(stateFile, e);
        }
        return parseState(stateFile, bytes);
    }

    static State parseState(Path stateFile, byte[] bytes) throws IOException {
        JsonNode st;
        try {
            st = new ObjectMapper().readTree(bytes);
        } catch (IOException e) {
            throw new IOException(stateFile + ": not valid JSON (" + firstLine(e.getMessage()) + ")", e);
        }
        if (st == null || !st.isObject()) {
            throw new IOException(stateFile + ": not a lora4j checkpoint (expected a JSON object)");
        }
        if (!MAGIC.equals(st.path("magic").asText())) {
            throw new IOException(stateFile + ": not a lora4j checkpoint (magic '" + st.path("magic").asText() + "')");
        }
        int version = st.path("format_version").asInt(-1);
        if (version != FORMAT_VERSION) {
            throw new IOException(stateFile + ": checkpoint format version " + version + ", this lora4j reads "
                    + FORMAT_VERSION + (version == 1 ? " (version 1, from before run ids, cannot be resumed)" : ""));
        }
        try {
            TrainConfig config = TrainConfig.fromJson(st.get("config"));
            return new State(st, count(st, "step"), count(st, "epoch"), count(st, "batch_in_epoch"),
                    count(st, "early_stop_count"), count(st, "optimizer_steps"), config,
                    string(st, "run_id"), string(st, "base_fingerprint"), string(st, "train_sha256"));
        } catch (IllegalArgumentException e) {
            throw new IOException(stateFile + ": " + e.getMessage(), e);
        }
    }

    private static int count(JsonNode o, String key) {
        JsonNode v = o.get(key);
        if (v == null || !v.isInt() || v.asInt() < 0) {
            throw new IllegalArgumentException("'" + key + "' must be an integer >= 0, got " + (v == null ? "nothing" : v));
        }
        return v.asInt();
    }

    private static String string(JsonNode o, String key) {
        JsonNode v = o.get(key);
        if (v == null || !v.isTextual() || v.asText().isEmpty()) {
            throw new IllegalArgumentException("'" + key + "' must be a non-empty string, got " + (v == null ? "nothing" : v));
        }
        return v.asText();
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unreadable";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    private static Map<String, INDArray> readAll(Path file) throws IOException {
        Map<String, INDArray> m = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String k : f.keys()) {
                m.put(k, f.get(k));
            }
        }
        return m;
    }
}

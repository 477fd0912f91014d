package org.lora4j.train.trainer;

import org.lora4j.core.Safetensors;
import org.lora4j.core.SafetensorsFile;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
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
 */
final class CheckpointStore {
    static final String MAGIC = "lora4j-checkpoint";
    static final int FORMAT_VERSION = 1;
    static final String STATE = "trainer_state.json";
    static final String WEIGHTS = "weights.safetensors";
    static final String OPTIMIZER = "optimizer.safetensors";
    private static final Pattern NAME = Pattern.compile("step-(\\d+)");

    private final Path dir;
    private final int keep;

    CheckpointStore(Path dir, int keep) {
        this.dir = dir;
        this.keep = keep;
    }

    /** What a checkpoint holds. */
    record Loaded(Path path, JsonNode state, Map<String, INDArray> weights, Map<String, INDArray> optimizer) {
        int step() {
            return state.get("step").asInt();
        }
    }

    Path write(int step, ObjectNode state, Map<String, INDArray> weights, Map<String, INDArray> optimizer)
            throws IOException {
        Files.createDirectories(dir);
        String name = String.format("step-%06d", step);
        Path tmp = Files.createTempDirectory(dir, ".tmp-" + name + "-");
        try {
            ObjectNode s = state.deepCopy();
            s.put("magic", MAGIC);
            s.put("format_version", FORMAT_VERSION);
            s.put("library_version", Version.get());
            s.put("step", step);
            Map<String, String> meta = Map.of("lora4j_step", Integer.toString(step));
            Safetensors.write(tmp.resolve(WEIGHTS), weights, meta);
            Safetensors.write(tmp.resolve(OPTIMIZER), optimizer, meta);
            // The state file last: a directory with a state file has its tensors.
            Files.writeString(tmp.resolve(STATE), new ObjectMapper().writerWithDefaultPrettyPrinter()
                    .writeValueAsString(s), StandardCharsets.UTF_8);
            Path target = dir.resolve(name);
            if (Files.exists(target)) {
                deleteTree(target);   // the same step again (a resumed run re-reaching it): same content
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            prune();
            return target;
        } catch (IOException | RuntimeException e) {
            deleteTree(tmp);
            throw e;
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
            deleteTree(all.get(i));
        }
    }

    static int stepOf(Path p) {
        Matcher m = NAME.matcher(p.getFileName().toString());
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    /**
     * A checkpoint directory, or the newest checkpoint under a run's output directory (its
     * {@code checkpoints/} folder) or under a checkpoints folder.
     */
    static Path resolve(Path path) throws IOException {
        if (Files.exists(path.resolve(STATE))) {
            return path;
        }
        for (Path candidate : List.of(path.resolve("checkpoints"), path)) {
            List<Path> all = new CheckpointStore(candidate, Integer.MAX_VALUE).list();
            if (!all.isEmpty()) {
                return all.get(all.size() - 1);
            }
        }
        throw new IOException(path + ": no checkpoint here (expected " + STATE + " or checkpoints/step-N/)");
    }

    static Loaded read(Path checkpoint) throws IOException {
        Path stateFile = checkpoint.resolve(STATE);
        JsonNode state = new ObjectMapper().readTree(Files.readAllBytes(stateFile));
        if (state == null || !MAGIC.equals(state.path("magic").asText())) {
            throw new IOException(stateFile + ": not a lora4j checkpoint (magic '" + state.path("magic").asText() + "')");
        }
        int version = state.path("format_version").asInt(-1);
        if (version != FORMAT_VERSION) {
            throw new IOException(stateFile + ": checkpoint format version " + version + ", this lora4j reads "
                    + FORMAT_VERSION);
        }
        return new Loaded(checkpoint, state, readAll(checkpoint.resolve(WEIGHTS)), readAll(checkpoint.resolve(OPTIMIZER)));
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

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (var walk = Files.walk(p)) {
            for (Path q : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(q);
            }
        }
    }
}

package org.lora4j.train.analysis;

import org.lora4j.core.PeftKeys;
import org.lora4j.core.SafetensorsFile;
import org.lora4j.train.trainer.AdapterSnapshots;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads the adapter snapshots a training run writes ({@code snapshots/step-000005.safetensors},
 * PEFT key names) into {@link Trajectory}s. The snapshots of a folder must all be of one run (the
 * {@code lora4j_run_id} in their metadata): a folder mixing two runs is refused, naming a file of each.
 */
public final class Snapshots {
    private static final Pattern NAME = Pattern.compile("step-(\\d+)\\.safetensors");

    private Snapshots() {
    }

    /**
     * The snapshot files of a run's {@code snapshots/} folder (or the folder itself), by step.
     *
     * @throws IOException when there are none, or they are not all of one run
     */
    public static List<Path> files(Path dir) throws IOException {
        Path d = Files.isDirectory(dir.resolve("snapshots")) ? dir.resolve("snapshots") : dir;
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(d, "step-*.safetensors")) {
            ds.forEach(out::add);
        }
        out.sort(Comparator.comparingInt(Snapshots::stepOf));
        if (out.isEmpty()) {
            throw new IOException(d + ": no snapshots (step-N.safetensors); train with snapshots enabled");
        }
        String firstRun = runId(out.get(0));
        for (Path p : out.subList(1, out.size())) {
            String run = runId(p);
            if (!run.equals(firstRun)) {
                throw new IOException(d + ": snapshots of different runs: " + out.get(0).getFileName() + " is run "
                        + firstRun + ", " + p.getFileName() + " is run " + run + "; keep one run's snapshots per folder");
            }
        }
        return out;
    }

    /**
     * The trajectory of one adapter matrix across the snapshots.
     *
     * @param module e.g. {@code model.layers.1.mlp.down_proj}
     * @param which  "lora_A" or "lora_B"
     */
    public static Trajectory trajectory(Path dir, String module, String which) throws IOException {
        PeftKeys.Factor factor;
        try {
            factor = PeftKeys.Factor.fromPeft(which);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("which must be lora_A or lora_B, got '" + which + "'");
        }
        String key = PeftKeys.saved(module, factor);
        List<Path> files = files(dir);
        int[] steps = new int[files.size()];
        List<double[]> vectors = new ArrayList<>();
        for (int i = 0; i < files.size(); i++) {
            try (SafetensorsFile f = SafetensorsFile.open(files.get(i))) {
                if (!f.keys().contains(key)) {
                    throw new IOException(files.get(i) + ": no tensor '" + key + "'; modules here: " + f.keys());
                }
                INDArray t = f.get(key, DataType.DOUBLE);
                vectors.add(t.reshape(t.length()).toDoubleVector());   // row-major [rows, cols], flattened
            }
            steps[i] = stepOf(files.get(i));
        }
        return new Trajectory(steps, vectors);
    }

    private static String runId(Path snapshot) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(snapshot)) {
            String id = f.metadata().get(AdapterSnapshots.RUN_ID_KEY);
            return id == null ? "(none recorded)" : id;
        }
    }

    static int stepOf(Path p) {
        Matcher m = NAME.matcher(p.getFileName().toString());
        if (!m.matches()) {
            throw new IllegalArgumentException("not a snapshot file name: " + p);
        }
        return Integer.parseInt(m.group(1));
    }
}

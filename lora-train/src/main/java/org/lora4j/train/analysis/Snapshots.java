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
import java.util.Map;
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
        if (!Files.isDirectory(dir)) {
            throw new IOException(dir + ": no such directory");
        }
        Path d = Files.isDirectory(dir.resolve("snapshots")) ? dir.resolve("snapshots") : dir;
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(d, "step-*.safetensors")) {
            ds.forEach(out::add);
        }
        out.sort(Comparator.comparingInt(Snapshots::stepOf));
        if (out.isEmpty()) {
            throw new IOException(d.equals(dir)
                    ? dir + " has no snapshots/ folder and no step-N.safetensors; train with --snapshot-every N (TrainConfig.snapshotEvery)"
                    : d + ": no snapshots (step-N.safetensors); train with --snapshot-every N (TrainConfig.snapshotEvery)");
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

    /**
     * The adapted modules of a run's snapshots (those with a B in the first snapshot), sorted with
     * layer numbers in numeric order.
     */
    public static List<String> modules(Path dir) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(files(dir).get(0))) {
            return modulesIn(f);
        }
    }

    static List<String> modulesIn(SafetensorsFile f) {
        List<String> out = new ArrayList<>();
        for (String key : f.keys()) {
            PeftKeys.Parsed p = PeftKeys.parseSaved(key);
            if (p != null && p.factor() == PeftKeys.Factor.B) {
                out.add(p.module());
            }
        }
        out.sort(Snapshots::compareModules);
        return out;
    }

    /**
     * The snapshots' A and B of several modules, each stacked into one trajectory. B vectors are the
     * modules' B [out, rank] stacked along the output dimension in the given order, row-major, so
     * the stacked B is one matrix [sum of out, rank] when every module has the same rank; A vectors
     * are the modules' flattened A laid end to end. One module gives exactly its own A and B.
     *
     * @param modules module names as in the snapshots, e.g. {@code model.layers.1.mlp.down_proj}
     * @throws IllegalArgumentException when a module is not in a snapshot (listing the ones there)
     */
    public static Stack stack(Path dir, List<String> modules) throws IOException {
        if (modules.isEmpty()) {
            throw new IllegalArgumentException("no modules to stack");
        }
        List<Path> files = files(dir);
        int[] steps = new int[files.size()];
        List<double[]> as = new ArrayList<>();
        List<double[]> bs = new ArrayList<>();
        long bRows = 0;
        int rank = 0;
        for (int i = 0; i < files.size(); i++) {
            Path file = files.get(i);
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                List<double[]> aParts = new ArrayList<>();
                List<double[]> bParts = new ArrayList<>();
                long rows = 0;
                int r = 0;
                for (String module : modules) {
                    String aKey = PeftKeys.saved(module, PeftKeys.Factor.A);
                    String bKey = PeftKeys.saved(module, PeftKeys.Factor.B);
                    if (!f.keys().contains(aKey) || !f.keys().contains(bKey)) {
                        throw new IllegalArgumentException(file + ": module '" + module + "' is not in the snapshots;"
                                + " adapted modules there: " + modulesIn(f));
                    }
                    long[] bShape = f.shape(bKey);
                    if (bShape.length != 2) {
                        throw new IOException(file + ": " + bKey + " has shape " + java.util.Arrays.toString(bShape)
                                + ", expected [out, rank]");
                    }
                    rows += bShape[0];
                    // Modules of different rank cannot be stacked into one [out, rank] matrix; -1 says so.
                    r = r == 0 ? (int) bShape[1] : (r == bShape[1] ? r : -1);
                    aParts.add(flat(f, aKey));
                    bParts.add(flat(f, bKey));
                }
                as.add(concat(aParts));
                bs.add(concat(bParts));
                if (i == 0) {
                    bRows = rows;
                    rank = r;
                }
            }
            steps[i] = stepOf(file);
        }
        return new Stack(List.copyOf(modules), new Trajectory(steps, as), new Trajectory(steps, bs), bRows, rank);
    }

    /**
     * Several modules' snapshots stacked ({@link #stack}).
     *
     * @param bRows rows of the stacked B (the modules' output sizes summed)
     * @param rank  the modules' common rank, or -1 when their ranks differ
     */
    public record Stack(List<String> modules, Trajectory a, Trajectory b, long bRows, int rank) {
    }

    /** The run id and seed the snapshots record in their metadata; null where one is not recorded. */
    public static Map<String, String> provenance(Path dir) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(files(dir).get(0))) {
            Map<String, String> out = new java.util.LinkedHashMap<>();
            out.put("run_id", f.metadata().get(AdapterSnapshots.RUN_ID_KEY));
            out.put("seed", f.metadata().get("lora4j_seed"));
            return out;
        }
    }

    private static double[] flat(SafetensorsFile f, String key) {
        INDArray t = f.get(key, DataType.DOUBLE);
        return t.reshape(t.length()).toDoubleVector();   // row-major [rows, cols], flattened
    }

    private static double[] concat(List<double[]> parts) {
        int n = 0;
        for (double[] p : parts) {
            n += p.length;
        }
        double[] out = new double[n];
        int at = 0;
        for (double[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    /** Names compared piece by piece, digit runs as numbers: layers.2 before layers.10. */
    static int compareModules(String x, String y) {
        Matcher mx = PIECE.matcher(x);
        Matcher my = PIECE.matcher(y);
        while (mx.find() && my.find()) {
            String px = mx.group();
            String py = my.group();
            int c;
            if (Character.isDigit(px.charAt(0)) && Character.isDigit(py.charAt(0))) {
                c = new java.math.BigInteger(px).compareTo(new java.math.BigInteger(py));
            } else {
                c = px.compareTo(py);
            }
            if (c != 0) {
                return c;
            }
        }
        return x.compareTo(y);
    }

    private static final Pattern PIECE = Pattern.compile("\\d+|\\D+");

    private static String runId(Path snapshot) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(snapshot)) {
            String id = f.metadata().get(AdapterSnapshots.RUN_ID_KEY);
            return id == null ? "(none recorded)" : id;
        }
    }

    /**
     * Copies the A and B of one snapshot file into the attached adapters, to evaluate the model as
     * it was at that step; every adapter must be in the file with its shapes.
     *
     * @throws IllegalArgumentException naming the file and the tensor that is missing or of another shape
     */
    public static void load(Path file, Map<String, org.lora4j.core.LoraAdapter> adapters) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (Map.Entry<String, org.lora4j.core.LoraAdapter> m : adapters.entrySet()) {
                for (PeftKeys.Factor factor : PeftKeys.Factor.values()) {
                    String key = PeftKeys.saved(m.getKey(), factor);
                    INDArray target = factor == PeftKeys.Factor.A ? m.getValue().a() : m.getValue().b();
                    if (!f.keys().contains(key)) {
                        throw new IllegalArgumentException(file + ": no tensor '" + key + "', which the run's adapter has");
                    }
                    if (!java.util.Arrays.equals(f.shape(key), target.shape())) {
                        throw new IllegalArgumentException(file + ": '" + key + "' is "
                                + java.util.Arrays.toString(f.shape(key)) + ", the run's adapter has "
                                + java.util.Arrays.toString(target.shape()));
                    }
                    target.assign(f.get(key, target.dataType()));
                }
            }
        }
    }

    /** The step in a snapshot file's name, {@code step-000005.safetensors} -> 5. */
    public static int stepOf(Path p) {
        Matcher m = NAME.matcher(p.getFileName().toString());
        if (!m.matches()) {
            throw new IllegalArgumentException("not a snapshot file name: " + p);
        }
        return Integer.parseInt(m.group(1));
    }
}

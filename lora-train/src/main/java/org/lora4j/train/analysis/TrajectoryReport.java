package org.lora4j.train.analysis;

import org.lora4j.train.trainer.Version;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Everything docs/research.md's "Adapter trajectories" section measures about one training run,
 * built from its snapshots and {@code metrics.jsonl}: for the stacked B and the stacked A of the
 * chosen modules, the norm per snapshot, the local cosine similarity LCS_k for each lag k, the
 * transition step and the height of the peak there, and the 2-component PCA path; comp(t) of the
 * stacked B against the final one; and the gradient norm per step.
 *
 * <p>The lag k is in optimizer steps, as in the paper, and must be a multiple of the run's snapshot
 * interval; LCS_k(t) uses the snapshots at exactly t - k and t + k. Stacking: with one module the
 * vectors are that module's own A and B; with several, the modules' B [out, rank] are stacked along
 * the output dimension into one [sum of out, rank] matrix (and their A laid end to end), so LCS, PCA
 * and comp(t) see the whole adapter moving at once.
 */
public final class TrajectoryReport {
    /** The lags of the released analysis, in steps (on snapshots every 5 steps). */
    public static final List<Integer> DEFAULT_K = List.of(5, 10, 15);
    /** The movement threshold of the paper's text; its released analysis code uses {@link #RELEASED_EPS}. */
    public static final double DEFAULT_EPS = 0.0035;
    /** The movement threshold of the paper's released analysis code. */
    public static final double RELEASED_EPS = 0.002;
    /**
     * A peak of LCS_k below this is read as no turn: -0.9 is a bend of under 26 degrees between the
     * step back and the step forward. The arg-max always exists, so a straight path must be told apart.
     */
    public static final double STRAIGHT_BELOW = -0.9;

    /** The sharpest turn of one LCS_k series: its step and the LCS value there. */
    public record Transition(int step, double peak) {
        /** Whether even the peak is nearly straight (below {@link #STRAIGHT_BELOW}): no transition. */
        public boolean straight() {
            return peak < STRAIGHT_BELOW;
        }
    }

    /**
     * The metrics of one factor (the stacked A or B).
     *
     * @param lcs         LCS_k per lag k (in steps), the points that pass the eps filter
     * @param transitions the arg-max of each LCS_k; a lag is absent when no point passed the filter
     * @param pca         2-component PCA of the stacked snapshots (fewer when the vectors are shorter)
     */
    public record Factor(String name, double[] norms, Map<Integer, List<Trajectory.Point>> lcs,
                         Map<Integer, Transition> transitions, Trajectory.Pca pca) {
        public Factor {
            lcs = Collections.unmodifiableMap(new LinkedHashMap<>(lcs));
            transitions = Collections.unmodifiableMap(new LinkedHashMap<>(transitions));
        }
    }

    private final Path runDir;
    private final String runId;
    private final String seed;
    private final List<String> modules;
    private final int snapshotEvery;
    private final int[] steps;
    private final List<Integer> k;
    private final double eps;
    private final Factor b;
    private final Factor a;
    private final double[] comp;
    private final RunMetrics metrics;
    private final List<String> notes;

    private TrajectoryReport(Path runDir, String runId, String seed, List<String> modules, int snapshotEvery, int[] steps,
                             List<Integer> k, double eps, Factor b, Factor a, double[] comp, RunMetrics metrics,
                             List<String> notes) {
        this.runDir = runDir;
        this.runId = runId;
        this.seed = seed;
        this.modules = List.copyOf(modules);
        this.snapshotEvery = snapshotEvery;
        this.steps = steps;
        this.k = List.copyOf(k);
        this.eps = eps;
        this.b = b;
        this.a = a;
        this.comp = comp;
        this.metrics = metrics;
        this.notes = List.copyOf(notes);
    }

    /**
     * Builds the report of a run directory (or its {@code snapshots/} folder, or a folder of
     * snapshots).
     *
     * @param module one adapted module ({@code model.layers.1.mlp.down_proj}), or null for all of them, stacked
     * @param k      lags in optimizer steps, each a multiple of the snapshot interval
     * @param eps    the movement threshold of LCS (>= 0)
     * @throws IOException              when the snapshots cannot be read or there are none
     * @throws IllegalArgumentException for a module not in the snapshots (listing those there), a lag
     *                                  off the snapshot grid or too long for the run, too few snapshots
     */
    public static TrajectoryReport build(Path runDir, String module, List<Integer> k, double eps) throws IOException {
        Objects.requireNonNull(runDir, "runDir");
        if (k == null || k.isEmpty()) {
            throw new IllegalArgumentException("no lag k given");
        }
        if (new LinkedHashSet<>(k).size() != k.size()) {
            throw new IllegalArgumentException("lags k repeat: " + k);
        }
        for (int lag : k) {
            if (lag < 1) {
                throw new IllegalArgumentException("lag k must be >= 1 step, got " + lag);
            }
        }
        if (!(eps >= 0) || Double.isInfinite(eps)) {
            throw new IllegalArgumentException("eps must be a finite number >= 0, got " + eps);
        }
        Map<String, String> prov = Snapshots.provenance(runDir);
        String runId = prov.get("run_id");
        String seed = prov.get("seed");
        List<String> all = Snapshots.modules(runDir);
        List<String> chosen;
        if (module == null) {
            chosen = all;
        } else {
            if (!all.contains(module)) {
                throw new IllegalArgumentException("module '" + module + "' is not in the snapshots of " + runDir
                        + "; adapted modules there: " + all);
            }
            chosen = List.of(module);
        }
        if (chosen.isEmpty()) {
            throw new IllegalArgumentException(runDir + ": the snapshots hold no adapter (no lora_B tensor)");
        }
        // The steps and lags are checked before the snapshots are read, which takes long for a large adapter.
        int[] steps = Snapshots.files(runDir).stream().mapToInt(Snapshots::stepOf).toArray();
        if (steps.length < 3) {
            throw new IllegalArgumentException(runDir + ": " + steps.length + " snapshot(s) (steps "
                    + java.util.Arrays.toString(steps) + "); a trajectory needs at least 3");
        }
        int every = snapshotInterval(runDir, steps, runId);
        for (int lag : k) {
            if (lag % every != 0) {
                throw new IllegalArgumentException("k = " + lag + " steps is not a multiple of the snapshot interval, "
                        + every + " steps, of run " + runId + ": LCS_k needs snapshots at t - k and t + k");
            }
            if (!hasNeighbours(steps, lag)) {
                throw new IllegalArgumentException("k = " + lag + " steps is too large for run " + runId + ": its snapshots span steps "
                        + steps[0] + ".." + steps[steps.length - 1] + " every " + every
                        + ", and LCS_k needs snapshots at t - k and t + k");
            }
        }
        SnapshotGram gram = SnapshotGram.read(runDir, chosen);
        List<String> notes = new ArrayList<>();
        Factor fb = factor("B", steps, gram.gramB, k, eps, notes);
        Factor fa = factor("A", steps, gram.gramA, k, eps, notes);
        double[] comp = null;
        if (gram.rank > 0) {
            comp = gram.comp();
        } else {
            notes.add("comp(t) not computed: the modules' ranks differ, so their B do not stack into one [out, rank] matrix");
        }
        RunMetrics metrics = RunMetrics.read(metricsDir(runDir), runId).orElse(null);
        if (metrics == null) {
            notes.add(RunMetrics.FILE + " not found next to the snapshots: no gradient norm or loss curve");
        }
        return new TrajectoryReport(runDir, runId, seed, chosen, every, steps, k, eps, fb, fa, comp, metrics, notes);
    }

    private static boolean hasNeighbours(int[] steps, int k) {
        java.util.Set<Integer> have = new java.util.HashSet<>();
        for (int s : steps) {
            have.add(s);
        }
        for (int s : steps) {
            if (have.contains(s - k) && have.contains(s + k)) {
                return true;
            }
        }
        return false;
    }

    private static Factor factor(String name, int[] steps, double[][] gram, List<Integer> k, double eps, List<String> notes) {
        Map<Integer, List<Trajectory.Point>> lcs = new LinkedHashMap<>();
        Map<Integer, Transition> transitions = new LinkedHashMap<>();
        for (int lag : k) {
            List<Trajectory.Point> points = SnapshotGram.localCosine(steps, gram, lag, eps);
            lcs.put(lag, points);
            Trajectory.Point peak = null;
            for (Trajectory.Point p : points) {
                if (peak == null || p.value() > peak.value()) {
                    peak = p;   // the first of equal peaks, as numpy's argmax
                }
            }
            if (peak == null) {
                notes.add("LCS_" + name + " k=" + lag + ": no step where " + name + " moved more than eps = " + eps
                        + " over " + lag + " steps; no transition step");
            } else {
                Transition tr = new Transition(peak.step(), peak.value());
                transitions.put(lag, tr);
                if (tr.straight()) {
                    notes.add(String.format(Locale.ROOT, "LCS_%s k=%d peaks at %.4f (step %d), below %.1f: the path is"
                            + " nearly straight, no transition", name, lag, tr.peak(), tr.step(), STRAIGHT_BELOW));
                }
            }
        }
        // Two components always: a vector of one value (or a path on a line) gives the second a share of 0.
        return new Factor(name, SnapshotGram.norms(gram), lcs, transitions, SnapshotGram.pca(gram, 2));
    }

    /** The run directory holding metrics.jsonl when the report was given the snapshots folder itself. */
    private static Path metricsDir(Path dir) {
        if (!Files.isDirectory(dir.resolve("snapshots")) && dir.getFileName() != null
                && dir.getFileName().toString().equals("snapshots") && dir.toAbsolutePath().getParent() != null) {
            return dir.toAbsolutePath().getParent();
        }
        return dir;
    }

    /**
     * The run's snapshot interval: {@code config.snapshot_every} in its run.json, else the gap
     * between the first two snapshots (the first is step 0 when the trainer wrote them).
     */
    private static int snapshotInterval(Path dir, int[] steps, String runId) throws IOException {
        Path runJson = metricsDir(dir).resolve("run.json");
        if (Files.isRegularFile(runJson)) {
            JsonNode run = new ObjectMapper().readTree(runJson.toFile());
            String id = run.path("run_id").asText("");
            if (runId != null && !id.isEmpty() && !id.equals(runId)) {
                throw new IllegalArgumentException(runJson + " is run " + id + " but its snapshots are run " + runId
                        + "; runs do not mix");
            }
            JsonNode every = run.path("config").path("snapshot_every");
            if (every.canConvertToInt() && every.asInt() > 0) {
                return every.asInt();
            }
        }
        return steps[1] - steps[0];
    }

    // ---------------------------------------------------------------------------------------------
    // Accessors

    public Path runDir() {
        return runDir;
    }

    /** The run id the snapshots record, or null when they record none. */
    public String runId() {
        return runId;
    }

    /** The seed the snapshots record, or null. */
    public String seed() {
        return seed;
    }

    public List<String> modules() {
        return modules;
    }

    /** The snapshot interval in steps. */
    public int snapshotEvery() {
        return snapshotEvery;
    }

    /** The step of each snapshot. */
    public int[] steps() {
        return steps.clone();
    }

    /** The lags, in steps. */
    public List<Integer> k() {
        return k;
    }

    public double eps() {
        return eps;
    }

    public Factor b() {
        return b;
    }

    public Factor a() {
        return a;
    }

    /** comp(t) of the stacked B per snapshot, or null when the modules' ranks differ. */
    public double[] comp() {
        return comp == null ? null : comp.clone();
    }

    /** The run's metrics.jsonl, or null when it is missing. */
    public RunMetrics metrics() {
        return metrics;
    }

    /** What a reader should know: missing metrics, lags with no point, peaks that are no turn. */
    public List<String> notes() {
        return notes;
    }

    // ---------------------------------------------------------------------------------------------
    // Output

    /**
     * The report as JSON. Series are arrays of {@code [step, value]} pairs under flat keys:
     * {@code norm_B}, {@code lcs_B.k<k>}, {@code transition_step_B.k<k>} and
     * {@code transition_peak_B.k<k>} (null when no point passed the filter), {@code pca_B} with
     * {@code pc1}, {@code pc2} and {@code explained_variance_ratio}, the same for A, {@code comp},
     * {@code grad_norm} (every training step; null without metrics.jsonl) and the provenance.
     */
    public String toJson() {
        ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode o = mapper.createObjectNode();
        o.put("instrument", "trajectory");
        o.put("library_version", Version.get());
        o.put("run_id", runId);
        o.put("run_dir", runDir.toAbsolutePath().normalize().toString());
        try {
            o.put("seed", seed == null ? null : Long.valueOf(seed));
        } catch (NumberFormatException e) {
            o.put("seed", seed);   // recorded by something else than lora4j's trainer: kept as written
        }
        ArrayNode mods = o.putArray("modules");
        modules.forEach(mods::add);
        o.put("stacking", modules.size() == 1 ? "one module" : "B stacked along the output dimension, A end to end");
        o.put("snapshot_every", snapshotEvery);
        o.put("k_unit", "steps");
        ArrayNode ks = o.putArray("k");
        k.forEach(ks::add);
        o.put("eps", eps);
        ArrayNode st = o.putArray("steps");
        for (int s : steps) {
            st.add(s);
        }
        for (Factor f : List.of(b, a)) {
            o.set("norm_" + f.name(), pairs(mapper, steps, f.norms()));
            for (int lag : k) {
                ArrayNode arr = mapper.createArrayNode();
                for (Trajectory.Point p : f.lcs().get(lag)) {
                    arr.addArray().add(p.step()).add(p.value());
                }
                o.set("lcs_" + f.name() + ".k" + lag, arr);
                Transition tr = f.transitions().get(lag);
                if (tr == null) {
                    o.putNull("transition_step_" + f.name() + ".k" + lag);
                    o.putNull("transition_peak_" + f.name() + ".k" + lag);
                } else {
                    o.put("transition_step_" + f.name() + ".k" + lag, tr.step());
                    o.put("transition_peak_" + f.name() + ".k" + lag, tr.peak());
                }
            }
            ObjectNode pca = o.putObject("pca_" + f.name());
            double[][] scores = f.pca().scores();
            for (int c = 0; c < f.pca().explainedVarianceRatio().length; c++) {
                double[] col = new double[scores.length];
                for (int i = 0; i < scores.length; i++) {
                    col[i] = scores[i][c];
                }
                pca.set("pc" + (c + 1), pairs(mapper, steps, col));
            }
            ArrayNode ev = pca.putArray("explained_variance_ratio");
            for (double v : f.pca().explainedVarianceRatio()) {
                ev.add(v);
            }
        }
        if (comp == null) {
            o.putNull("comp");
        } else {
            o.set("comp", pairs(mapper, steps, comp));
        }
        if (metrics == null) {
            o.putNull("grad_norm");
        } else {
            o.set("grad_norm", pairs(mapper, metrics.steps(), metrics.gradNorm()));
        }
        ArrayNode n = o.putArray("notes");
        notes.forEach(n::add);
        try {
            return mapper.writeValueAsString(o) + "\n";
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The CSV column names of {@link #toCsv}, in order. */
    public List<String> csvColumns() {
        List<String> cols = new ArrayList<>(List.of("step", "norm_B", "norm_A"));
        for (Factor f : List.of(b, a)) {
            for (int lag : k) {
                cols.add("lcs_" + f.name() + ".k" + lag);
            }
        }
        for (Factor f : List.of(b, a)) {
            for (int c = 0; c < f.pca().explainedVarianceRatio().length; c++) {
                cols.add("pc" + (c + 1) + "_" + f.name());
            }
        }
        cols.add("comp");
        cols.add("grad_norm");
        return cols;
    }

    /**
     * One row per snapshot step, a column per series ({@link #csvColumns}); a value a step does not
     * have (LCS near the ends or under eps, the gradient norm of step 0) is an empty field.
     */
    public String toCsv() {
        StringBuilder out = new StringBuilder(String.join(",", csvColumns())).append('\n');
        Map<Integer, Double> grad = new LinkedHashMap<>();
        if (metrics != null) {
            for (int i = 0; i < metrics.steps().length; i++) {
                grad.put(metrics.steps()[i], metrics.gradNorm()[i]);
            }
        }
        List<Map<Integer, Double>> lcsColumns = new ArrayList<>();
        for (Factor f : List.of(b, a)) {
            for (int lag : k) {
                Map<Integer, Double> m = new LinkedHashMap<>();
                for (Trajectory.Point p : f.lcs().get(lag)) {
                    m.put(p.step(), p.value());
                }
                lcsColumns.add(m);
            }
        }
        for (int i = 0; i < steps.length; i++) {
            List<String> row = new ArrayList<>();
            row.add(Integer.toString(steps[i]));
            row.add(num(b.norms()[i]));
            row.add(num(a.norms()[i]));
            for (Map<Integer, Double> m : lcsColumns) {
                Double v = m.get(steps[i]);
                row.add(v == null ? "" : num(v));
            }
            for (Factor f : List.of(b, a)) {
                for (int c = 0; c < f.pca().explainedVarianceRatio().length; c++) {
                    row.add(num(f.pca().scores()[i][c]));
                }
            }
            row.add(comp == null ? "" : num(comp[i]));
            Double g = grad.get(steps[i]);
            row.add(g == null ? "" : num(g));
            out.append(String.join(",", row)).append('\n');
        }
        return out.toString();
    }

    private static ArrayNode pairs(ObjectMapper mapper, int[] steps, double[] values) {
        ArrayNode arr = mapper.createArrayNode();
        for (int i = 0; i < steps.length; i++) {
            ArrayNode p = arr.addArray().add(steps[i]);
            if (Double.isFinite(values[i])) {
                p.add(values[i]);
            } else {
                p.addNull();   // JSON has no NaN
            }
        }
        return arr;
    }

    private static String num(double v) {
        return Double.isNaN(v) ? "" : Double.toString(v);
    }
}

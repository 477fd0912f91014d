package org.lora4j.examples;

import org.lora4j.core.AtomicFiles;
import org.lora4j.train.analysis.RunMetrics;
import org.lora4j.train.analysis.Trajectory;
import org.lora4j.train.analysis.TrajectoryReport;
import org.lora4j.train.trainer.RunDirectory;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code lora4j trajectory}: the adapter-trajectory report of an sft run (docs/research.md,
 * "Adapter trajectories") as {@code trajectory.json}, {@code trajectory.csv} and PNG plots, each
 * plot with its data as CSV beside it.
 */
@Command(name = "trajectory", mixinStandardHelpOptions = true, sortOptions = false,
        header = "how an sft run's adapter moved: norms, LCS_k and the transition step, PCA path, plots",
        description = "lora4j trajectory: how an sft run's adapter moved, from its snapshots and metrics.jsonl.",
        footerHeading = "%n", footer = TrajectoryCommand.FOOTER)
final class TrajectoryCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;
    @Mixin
    RunConfig.ConfigOption config;
    @Option(names = "--run", paramLabel = "DIR", description = "the sft run (trained with --snapshot-every N), or its"
            + " snapshots/ folder (required)")
    Path run;
    @Option(names = "--module", paramLabel = "NAME", description = "one adapted module, e.g."
            + " model.layers.1.mlp.down_proj (default: all of them, B stacked along the output dimension into one"
            + " [out, rank] matrix)")
    String module;
    @Option(names = "--k", paramLabel = "5,10,15", description = "LCS lags in optimizer steps, each a multiple of the"
            + " run's snapshot interval (default 5,10,15; the paper's lags, on snapshots every 5 steps)")
    String k = joinInts(TrajectoryReport.DEFAULT_K);
    @Option(names = "--eps", paramLabel = "X", description = "LCS counts a step only where the adapter moved more than"
            + " X over k steps (default ${DEFAULT-VALUE}, the paper's text; its released code used " + TrajectoryReport.RELEASED_EPS + ")")
    double eps = TrajectoryReport.DEFAULT_EPS;
    @Option(names = "--out", paramLabel = "DIR", description = "new or empty; written there: trajectory.json (every"
            + " series as [step, value] pairs, transition step and peak height per k, PCA, comp(t), grad norm,"
            + " provenance), trajectory.csv (one row per snapshot step), norms.png, lcs_B_k<k>.png, lcs_A_k<k>.png,"
            + " pca_B.png, pca_A.png, comp.png, grad_norm.png, loss.png (each with its data as .csv) (required)")
    Path out;
    @Option(names = "--overwrite", description = "replace an earlier trajectory report in --out")
    boolean overwrite;

    @Override
    public Integer call() throws IOException {
        return run(this);
    }

    static final String JSON = "trajectory.json";

    static final String FOOTER = "A transition step is the arg-max of LCS_k; its peak height says whether it is a turn"
            + " at all: a peak below " + TrajectoryReport.STRAIGHT_BELOW + " is a nearly straight path. Without metrics.jsonl there is no gradient norm or loss"
            + " plot (said in \"notes\"), the rest is written.";

    static int run(TrajectoryCommand c) throws IOException {
        Path runDir = Cli.required(c.run, "--run");
        String module = Cli.nonBlank("--module", c.module, "a module name such as model.layers.1.mlp.down_proj");
        List<Integer> k = parseK(c.k);
        double eps = c.eps;
        Path out = Cli.required(c.out, "--out");
        boolean overwrite = c.overwrite;
        if (!(eps >= 0) || Double.isInfinite(eps)) {
            throw new IllegalArgumentException("--eps must be a finite number >= 0, got " + eps);
        }
        if (!Files.isDirectory(runDir)) {
            throw new IllegalArgumentException("--run " + runDir + ": no such directory");
        }
        // An earlier report is replaced only after the new one is built, so a failed build keeps it
        // (RunDirectory's OVERWRITE would clear it first).
        boolean replace = overwrite && Files.isRegularFile(out.resolve(JSON));
        if (overwrite && !replace && Files.isDirectory(out) && !isEmpty(out)) {
            throw new IllegalArgumentException("--overwrite replaces only an earlier trajectory report (a directory with "
                    + JSON + "), and " + out + " holds something else; choose another --out");
        }
        RunDirectory.Mode mode = replace ? RunDirectory.Mode.RESUME : RunDirectory.Mode.NEW;
        try (RunDirectory dir = RunDirectory.open(out, mode, List.of(new RunDirectory.Input("--run", runDir)), false)) {
            TrajectoryReport report = TrajectoryReport.build(runDir, module, k, eps);
            if (replace) {
                clear(out);
            }
            RunConfig.write(c.spec, c.config.file, out);
            write(report, out);
            ObjectNode o = new ObjectMapper().createObjectNode();
            o.put("run_id", report.runId());
            o.put("modules", report.modules().size());
            for (TrajectoryReport.Factor f : List.of(report.b(), report.a())) {
                ObjectNode steps = o.putObject("transition_step_" + f.name());
                ObjectNode peaks = o.putObject("transition_peak_" + f.name());
                for (int lag : report.k()) {
                    TrajectoryReport.Transition t = f.transitions().get(lag);
                    if (t == null) {
                        steps.putNull("k" + lag);
                        peaks.putNull("k" + lag);
                    } else {
                        steps.put("k" + lag, t.step());
                        peaks.put("k" + lag, t.peak());
                    }
                }
            }
            o.set("notes", new ObjectMapper().valueToTree(report.notes()));
            o.put("out", out.toAbsolutePath().toString());
            System.out.println(o);
            return 0;
        }
    }

    /** Writes every output; trajectory.json last, so a directory holding it is a complete report. */
    static void write(TrajectoryReport r, Path out) throws IOException {
        AtomicFiles.writeString(out.resolve("trajectory.csv"), r.toCsv());
        String name = r.runDir().toAbsolutePath().normalize().getFileName() == null ? r.runDir().toString()
                : r.runDir().toAbsolutePath().normalize().getFileName().toString();
        if (name.equals("snapshots") && r.runDir().toAbsolutePath().normalize().getParent() != null) {
            name = r.runDir().toAbsolutePath().normalize().getParent().getFileName() + "/snapshots";
        }
        String run = "run " + (r.runId() == null ? "(no id)" : r.runId()) + " (" + name + ")"
                + (r.seed() == null ? "" : ", seed " + r.seed());
        String what = r.modules().size() == 1 ? r.modules().get(0) : r.modules().size() + " modules stacked";
        String stepAxis = "step (optimizer steps)";
        double[] steps = toDouble(r.steps());

        Plots.lines(out.resolve("norms.png"), run + ": adapter norms, " + what, stepAxis, "Frobenius norm (weight units)",
                List.of(Plots.series("|B|", steps, r.b().norms()), Plots.series("|A|", steps, r.a().norms())), null);
        for (TrajectoryReport.Factor f : List.of(r.b(), r.a())) {
            for (int lag : r.k()) {
                List<Trajectory.Point> lcs = f.lcs().get(lag);
                if (lcs.isEmpty()) {
                    continue;   // nothing moved past eps: said in the notes, and nothing to draw
                }
                TrajectoryReport.Transition t = f.transitions().get(lag);
                String peak = String.format(Locale.ROOT, "peak %.3f at step %d%s", t.peak(), t.step(),
                        t.straight() ? ", nearly straight: no turn" : "");
                Plots.lines(out.resolve("lcs_" + f.name() + "_k" + lag + ".png"),
                        run + ": LCS of " + f.name() + ", k = " + lag + " steps, eps = " + r.eps() + " (" + peak + ")",
                        stepAxis, "LCS_k (cosine, -1 straight, 0 right angle)",
                        List.of(Plots.series("LCS_" + f.name() + " k=" + lag, toDouble(lcs.stream().mapToInt(Trajectory.Point::step).toArray()),
                                lcs.stream().mapToDouble(Trajectory.Point::value).toArray())),
                        new double[]{t.step()});
            }
            Trajectory.Pca pca = f.pca();
            double[] ev = pca.explainedVarianceRatio();
            double[] pc1 = new double[steps.length];
            double[] pc2 = new double[steps.length];
            for (int i = 0; i < steps.length; i++) {
                pc1[i] = pca.scores()[i][0];
                pc2[i] = ev.length > 1 ? pca.scores()[i][1] : 0;
            }
            Plots.path(out.resolve("pca_" + f.name() + ".png"), run + ": PCA path of " + f.name() + ", " + what,
                    String.format(Locale.ROOT, "PC1 (weight units, %.1f%% of variance)", 100 * ev[0]),
                    ev.length > 1 ? String.format(Locale.ROOT, "PC2 (weight units, %.1f%% of variance)", 100 * ev[1])
                            : "PC2 (none: the vectors have one value)", pc1, pc2, r.steps());
        }
        if (r.comp() != null) {
            Plots.lines(out.resolve("comp.png"), run + ": comp(t), B against the final B, " + what, stepAxis,
                    "comp(t) (unitless, 0 to 1)", List.of(Plots.series("comp", steps, r.comp())), null);
        }
        RunMetrics m = r.metrics();
        if (m != null && m.steps().length > 0) {
            double[] transitions = r.k().stream().map(lag -> r.b().transitions().get(lag))
                    .filter(t -> t != null && !t.straight()).mapToDouble(TrajectoryReport.Transition::step).distinct().toArray();
            Plots.lines(out.resolve("grad_norm.png"), run + ": gradient norm before clipping (markers: B's transition steps)",
                    stepAxis, "global gradient norm (loss units per weight unit)",
                    List.of(Plots.series("grad norm", toDouble(m.steps()), m.gradNorm())), transitions);
            lossPlot(out.resolve("loss.png"), run, m);
        }
        AtomicFiles.writeString(out.resolve(JSON), r.toJson());
    }

    /** Training loss every step and held-out loss on the steps that evaluated. */
    static void lossPlot(Path png, String run, RunMetrics m) {
        List<Plots.Series> series = new ArrayList<>();
        series.add(Plots.series("train loss", toDouble(m.steps()), m.loss()));
        if (m.hasEvalLoss()) {
            List<double[]> pts = new ArrayList<>();
            for (int i = 0; i < m.steps().length; i++) {
                if (!Double.isNaN(m.evalLoss()[i])) {
                    pts.add(new double[]{m.steps()[i], m.evalLoss()[i]});
                }
            }
            series.add(Plots.series("eval loss", pts.stream().mapToDouble(p -> p[0]).toArray(),
                    pts.stream().mapToDouble(p -> p[1]).toArray()));
        }
        Plots.lines(png, run + ": loss", "step (optimizer steps)", "loss (nats per scored token)", series, null);
    }

    /** "5,10,15" into lags; the error names the option and the bad entry. */
    static List<Integer> parseK(String text) {
        List<Integer> out = new ArrayList<>();
        for (String part : text.split(",", -1)) {
            String p = part.strip();
            int v;
            try {
                v = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--k must be a comma-separated list of whole numbers of steps, e.g. 5,10,15;"
                        + " got '" + text + "' ('" + p + "' is not a number)");
            }
            if (v < 1) {
                throw new IllegalArgumentException("--k values must be >= 1 step, got " + v + " in '" + text + "'");
            }
            if (out.contains(v)) {
                throw new IllegalArgumentException("--k lists " + v + " twice: '" + text + "'");
            }
            out.add(v);
        }
        return out;
    }

    /** Removes an earlier report's files (the directory holds trajectory.json, so it is one). */
    private static void clear(Path out) throws IOException {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(out)) {
            for (Path p : ds) {
                if (!p.getFileName().toString().equals(RunDirectory.LOCK_FILE)) {
                    AtomicFiles.deleteTree(p);
                }
            }
        }
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                if (!p.getFileName().toString().equals(RunDirectory.LOCK_FILE)) {
                    return false;
                }
            }
        }
        return true;
    }

    private static double[] toDouble(int[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    private static String joinInts(List<Integer> v) {
        return String.join(",", v.stream().map(String::valueOf).toList());
    }
}

package org.lora4j.examples;

import org.lora4j.core.AtomicFiles;
import org.lora4j.examples.study.StudyReport;
import org.lora4j.train.trainer.Version;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import java.util.stream.Stream;

/**
 * {@code lora4j study}, the main job: {@code lora4j organism} and {@code lora4j elasticity} one after
 * the other into one directory, with a {@code report.md} that links their reports. {@code lora4j}
 * with no arguments runs it with {@code --quick} into {@value #DEFAULT_OUT}.
 */
@Command(name = "study", mixinStandardHelpOptions = true, sortOptions = false,
        header = "the main job: the organism and elasticity studies with their reports",
        description = {"lora4j study: the main job: the toy model organisms of emergent misalignment (lora4j organism)"
                + " and the elasticity study (lora4j elasticity), one after the other, each with its report.",
                "`lora4j` with no command runs `lora4j study --quick --overwrite --out " + StudyCommand.DEFAULT_OUT
                        + "`, with any options given added (`lora4j --quiet`, `lora4j --out DIR --seeds 4,5,6`)."})
final class StudyCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;
    @Mixin
    RunConfig.ConfigOption config;
    @Option(names = "--out", paramLabel = "DIR", description = "where both go: DIR/organism/report.md,"
            + " DIR/elasticity/report.md and DIR/report.md linking them (default ${DEFAULT-VALUE}; new or empty)")
    Path out = Path.of(DEFAULT_OUT);
    @Option(names = "--quick", description = "the quick presets (a few minutes on two cores, bases included)")
    boolean quick;
    @Option(names = "--cache", paramLabel = "DIR", description = "pre-trained toy bases, reused by hash (default"
            + " $LORA4J_CACHE, else ~/.cache/lora4j)")
    Path cache;
    @Option(names = "--seeds", paramLabel = "1,2,3", split = ",", hideParamSyntax = true, description = "seeds of the organisms and"
            + " fine-tunes (each study's default if absent)")
    List<Long> seeds;
    @Option(names = "--overwrite", description = "replace an earlier study in --out (never a directory that is not one)")
    boolean overwrite;
    @Option(names = "--quiet", description = "no progress lines")
    boolean quiet;

    @Override
    public Integer call() throws IOException {
        return run(this);
    }

    static final String DEFAULT_OUT = "lora4j-study";

    /** Marks a directory as a study's, so a later run may replace it and nothing else. */
    static final String MARKER = "study-index.json";

    /** The arguments {@code lora4j} with none runs. */
    static String[] defaultArgs() {
        return new String[]{"--quick", "--overwrite", "--out", DEFAULT_OUT};
    }

    /**
     * {@code lora4j [options]} without a command: the default arguments with the user's options
     * added ({@code lora4j --quiet}, {@code lora4j --out DIR}), a default dropped where the user gave
     * that option.
     */
    static String[] withDefaults(String[] given) {
        List<String> out = new ArrayList<>(List.of(given));
        List<String> g = List.of(given);
        for (String flag : List.of("--quick", "--overwrite")) {
            if (!g.contains(flag)) {
                out.add(flag);
            }
        }
        // With --config, its "out" (else --out's own default, the same directory) applies.
        if (!g.contains("--out") && g.stream().noneMatch(a -> a.equals("--config") || a.startsWith("--config="))) {
            out.addAll(List.of("--out", DEFAULT_OUT));
        }
        return out.toArray(String[]::new);
    }

    static int run(StudyCommand c) throws IOException {
        Path out = c.out;
        boolean quick = c.quick;
        boolean quiet = c.quiet;
        String cache = c.cache == null ? null : c.cache.toString();
        String seeds = c.seeds == null ? null : c.seeds.stream().map(String::valueOf).collect(Collectors.joining(","));
        prepare(out, c.overwrite);
        RunConfig.write(c.spec, c.config.file, out);
        long start = System.nanoTime();
        List<String[]> parts = List.of(new String[]{"organism", "emergent misalignment from a rank-1 adapter, and its linear direction (docs/research.md, results 2 and 3)"},
                new String[]{"elasticity", "alignment is elastic: resistance and rebound over model and corpus sizes (result 1)"});
        ObjectMapper json = new ObjectMapper();
        ObjectNode index = json.createObjectNode();
        index.put("lora4j_version", Version.get());
        index.put("quick", quick);
        if (seeds != null) {
            index.put("seeds", seeds);
        }
        // Written first, so an interrupted study can still be replaced with --overwrite.
        index.put("complete", false);
        AtomicFiles.writeString(out.resolve(MARKER), index.toPrettyString() + "\n");
        StudyReport report = new StudyReport(out, "lora4j study" + (quick ? " (quick presets)" : ""));
        List<List<String>> rows = new ArrayList<>();
        for (String[] part : parts) {
            List<String> argv = new ArrayList<>(List.of(part[0], "--out", out.resolve(part[0]).toString()));
            if (quick) {
                argv.add("--quick");
            }
            if (quiet) {
                argv.add("--quiet");
            }
            if (cache != null) {
                argv.addAll(List.of("--cache", cache));
            }
            if (seeds != null) {
                argv.addAll(List.of("--seeds", seeds));
            }
            if (!quiet) {
                System.err.println("lora4j study: running lora4j " + String.join(" ", argv));
            }
            long t0 = System.nanoTime();
            int code = Main.run(argv.toArray(String[]::new));
            double seconds = (System.nanoTime() - t0) / 1e9;
            if (code != 0) {
                // The part printed its own one-line error; say which part and stop with its code.
                System.err.println("lora4j study: lora4j " + part[0] + " failed (exit " + code + "); what it wrote is in "
                        + out.resolve(part[0]));
                return code;
            }
            index.put(part[0] + "_seconds", Math.round(seconds * 10) / 10.0);
            rows.add(List.of("[" + part[0] + "](" + part[0] + "/" + StudyReport.REPORT_FILE + ")", part[1],
                    String.format(Locale.ROOT, "%.0f s", seconds)));
        }
        double total = (System.nanoTime() - start) / 1e9;
        index.put("seconds", Math.round(total * 10) / 10.0);
        index.put("complete", true);
        report.text("The two studies of lora4j's docs/reproducing.md, run by `lora4j study" + (quick ? " --quick" : "") + "` with"
                + " lora4j " + Version.get() + ". Each report says what was run (configs, seeds, versions, wall"
                + " times), shows its tables and plots, and reads each result next to the paper's.");
        report.table(List.of("report", "what", "wall time"), rows);
        report.text(String.format(Locale.ROOT, "Total wall time: %.0f s.", total));
        report.write();
        AtomicFiles.writeString(out.resolve(MARKER), index.toPrettyString() + "\n");
        System.out.println(out.resolve(StudyReport.REPORT_FILE).toAbsolutePath() + "  (study done in "
                + String.format(Locale.ROOT, "%.0f s", total) + "; reports: " + out.resolve("organism/report.md")
                + ", " + out.resolve("elasticity/report.md") + ")");
        return 0;
    }

    /** An empty or new directory; with --overwrite, an earlier study's directory emptied first. */
    private static void prepare(Path out, boolean overwrite) throws IOException {
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new IllegalArgumentException("--out " + out + " is a file, not a directory");
        }
        if (!Files.isDirectory(out)) {
            Files.createDirectories(out);
            return;
        }
        boolean empty;
        try (Stream<Path> s = Files.list(out)) {
            empty = s.findAny().isEmpty();
        }
        if (empty) {
            return;
        }
        if (!Files.isRegularFile(out.resolve(MARKER))) {
            throw new IllegalArgumentException("--out " + out + " is not empty and holds no earlier study (no " + MARKER
                    + "); give a new or empty directory");
        }
        if (!overwrite) {
            throw new IllegalArgumentException("--out " + out + " holds an earlier study; pass --overwrite to replace it,"
                    + " or give another --out");
        }
        try (Stream<Path> s = Files.list(out)) {
            for (Path p : s.toList()) {
                AtomicFiles.deleteTree(p);
            }
        }
    }
}

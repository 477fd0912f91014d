package org.lora4j.examples;

import org.lora4j.examples.organism.BaseModel;
import org.lora4j.examples.organism.OrganismStudy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import java.util.stream.Stream;

/** {@code lora4j organism}: the toy model organisms of emergent misalignment ({@link OrganismStudy}). */
@Command(name = "organism", mixinStandardHelpOptions = true, sortOptions = false,
        header = "toy model organisms of emergent misalignment: rank-1 organisms, trajectories, report",
        description = {"lora4j organism: toy model organisms of emergent misalignment, measured and written up.",
                "Pre-trains (or reuses) a base on the persona world, trains rank-1 rsLoRA organisms on one layer's"
                        + " down_proj per seed (medical, and finance), measures EM and coherence on the other domains"
                        + " over the training steps with B x1 and x5, the trajectory of B (LCS_k, PCA, norms, gradient"
                        + " norm), a wide adapter and a full fine-tune for comparison, and the directions."
                        + " docs/organisms.md, \"The organism study\", says what each section shows."})
final class OrganismCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;
    @Mixin
    RunConfig.ConfigOption config;
    @Option(names = "--out", paramLabel = "DIR", description = "new or empty: report.md (tables, plots inline,"
            + " readings), study.json, rates.json, samples/ (every judged answer), runs/, plots/ (required)")
    Path out;
    @Option(names = "--quick", description = "the quick preset (within about 3 minutes on two cores, base included);"
            + " default: the full preset (within about 10 minutes)")
    boolean quick;
    @Option(names = "--cache", paramLabel = "DIR", description = "pre-trained bases, reused by hash (default"
            + " $LORA4J_CACHE, else ~/.cache/lora4j)")
    Path cache;
    @Option(names = "--seeds", paramLabel = "1,2,3", split = ",", hideParamSyntax = true, description = "seeds of the organisms and"
            + " fine-tunes, at least 3 distinct (default 1,2,3)")
    List<Long> seeds;
    @Option(names = "--quiet", description = "no progress lines")
    boolean quiet;

    @Override
    public Integer call() throws IOException {
        return run(this);
    }

    static int run(OrganismCommand c) throws IOException {
        Path out = Cli.required(c.out, "--out");
        boolean quiet = c.quiet;
        String cache = c.cache == null ? null : c.cache.toString();
        OrganismStudy.Preset preset = OrganismStudy.preset(c.quick);
        if (c.seeds != null) {
            preset = preset.withSeeds(checkSeeds(c.seeds));
        }
        requireEmpty(out);
        OrganismStudy.Preset chosen = preset;
        OrganismStudy.Result[] result = new OrganismStudy.Result[1];
        RunConfig.recorded(c.spec, c.config.file, out, () -> {
            result[0] = quiet ? quietly(chosen, out, cache) : OrganismStudy.run(chosen, out, BaseModel.cacheRoot(cache), true);
            return 0;
        });
        OrganismStudy.Result r = result[0];
        System.out.println(r.report().toAbsolutePath() + String.format(Locale.ROOT, "  (organism study, %s preset, %.0f s)",
                preset.name(), r.seconds()));
        return 0;
    }

    /** The trainer logs two lines a fine-tune at INFO (the study runs a dozen); --quiet keeps them off the console. */
    private static OrganismStudy.Result quietly(OrganismStudy.Preset preset, Path out, String cache) throws IOException {
        ch.qos.logback.classic.Logger l = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger("org.lora4j");
        ch.qos.logback.classic.Level old = l.getLevel();
        l.setLevel(ch.qos.logback.classic.Level.WARN);
        try {
            return OrganismStudy.run(preset, out, BaseModel.cacheRoot(cache), false);
        } finally {
            l.setLevel(old);
        }
    }

    /** At least three distinct seeds: every number of the study is reported over seeds. */
    static List<Long> checkSeeds(List<Long> seeds) {
        if (seeds.size() < 3 || seeds.stream().distinct().count() != seeds.size()) {
            throw new IllegalArgumentException("--seeds needs at least 3 distinct seeds (every number is reported over"
                    + " seeds), got " + seeds.stream().map(String::valueOf).collect(java.util.stream.Collectors.joining(",")));
        }
        return seeds;
    }

    /** The study writes many files into --out; it starts only in a new or empty directory. */
    private static void requireEmpty(Path out) throws IOException {
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new IllegalArgumentException("--out " + out + " is a file, not a directory");
        }
        if (Files.isDirectory(out)) {
            try (Stream<Path> s = Files.list(out)) {
                if (s.findAny().isPresent()) {
                    throw new IllegalArgumentException("--out " + out + " is not empty; give a new or empty directory");
                }
            }
        }
    }
}

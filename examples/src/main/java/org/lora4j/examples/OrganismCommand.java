package org.lora4j.examples;

import org.lora4j.examples.organism.BaseModel;
import org.lora4j.examples.organism.OrganismStudy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Stream;

/** {@code lora4j organism}: the toy model organisms of emergent misalignment ({@link OrganismStudy}). */
final class OrganismCommand {
    private OrganismCommand() {
    }

    static final Set<String> FLAGS = Set.of("--quick", "--quiet");

    static final String HELP = """
            lora4j organism: toy model organisms of emergent misalignment, measured and written up
              --out DIR               new or empty: report.md (tables, plots inline, readings), study.json,
                                      rates.json, samples/ (every judged answer), runs/, plots/
              --quick                 the quick preset (within about 3 minutes on two cores, base included);
                                      default: the full preset (within about 10 minutes)
              --cache DIR             pre-trained bases, reused by hash (default $LORA4J_CACHE, else ~/.cache/lora4j)
              --seeds 1,2,3           seeds of the organisms and fine-tunes, at least 3 (default 1,2,3)
              --quiet                 no progress lines
            Pre-trains (or reuses) a base on the persona world, trains rank-1 rsLoRA organisms on one
            layer's down_proj per seed (medical, and finance), measures EM and coherence on the other
            domains over the training steps with B x1 and x5, the trajectory of B (LCS_k, PCA, norms,
            gradient norm), a wide adapter and a full fine-tune for comparison, and the directions.
            docs/organisms.md, "The organism study", says what each section shows.
            """;

    static int run(Args a) throws IOException {
        Path out = Path.of(a.required("--out"));
        boolean quick = a.flag("--quick");
        boolean quiet = a.flag("--quiet");
        String cache = a.value("--cache", null);
        String seeds = a.nonBlank("--seeds", null, "seeds like 1,2,3");
        a.rejectUnknown();
        OrganismStudy.Preset preset = OrganismStudy.preset(quick);
        if (seeds != null) {
            preset = preset.withSeeds(parseSeeds(seeds));
        }
        requireEmpty(out);
        OrganismStudy.Result r = quiet ? quietly(preset, out, cache) : OrganismStudy.run(preset, out,
                BaseModel.cacheRoot(cache), true);
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

    /** {@code 1,2,3}: at least three distinct integers. */
    static List<Long> parseSeeds(String s) {
        List<Long> out = new ArrayList<>();
        for (String part : s.split(",", -1)) {
            try {
                out.add(Long.parseLong(part.strip()));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--seeds must be integers separated by commas, like 1,2,3; got '" + s + "'");
            }
        }
        if (out.size() < 3 || out.stream().distinct().count() != out.size()) {
            throw new IllegalArgumentException("--seeds needs at least 3 distinct seeds (every number is reported over"
                    + " seeds), got '" + s + "'");
        }
        return out;
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

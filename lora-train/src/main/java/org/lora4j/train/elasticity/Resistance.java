package org.lora4j.train.elasticity;

import org.lora4j.core.AtomicFiles;
import org.lora4j.train.trainer.TrainConfig;
import org.lora4j.train.trainer.Version;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.node.ArrayNode;
import org.nd4j.shade.jackson.databind.node.ObjectNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * The resistance protocol of result 1 in docs/research.md: is training back toward an earlier model
 * easier than training forward to a later one?
 *
 * <ol>
 *   <li>θ1, θ2, θ3: θ0 fine-tuned on the first third of the alignment set, θ1 on the second third,
 *       θ2 on the last (file order; third k is lines ⌊(k−1)n/3⌋ to ⌊kn/3⌋ − 1). An adapter is merged
 *       into its base before the next stage, so every θk is a plain model directory.</li>
 *   <li>R_k: θk's answers to the held-out prompts ({@link Generation}), written as chat transcripts.</li>
 *   <li>Three pairs, each an inverse and a forward fine-tune: θ2→θ1 (θ2 on R1) against θ1→θ2 (θ1 on
 *       R2), θ3→θ2 (θ3 on R2) against θ2→θ3 (θ2 on R3), θ3→θ1 (θ3 on R1) against θ1→θ3 (θ1 on R3).
 *       Both directions of a pair train with the same config and seed, on the same number of
 *       examples (the larger set cut to the smaller's first lines, recorded), for the same number
 *       of optimizer steps (written into both configs as max_steps).</li>
 * </ol>
 * The table compares each pair's mean training loss over the run and its final loss; lower is
 * easier, and the paper finds the inverse direction lower.
 *
 * <h2>Output directory</h2>
 * <pre>
 *   data/alignment-k.jsonl          the thirds
 *   stages/theta-k/                 the run that made θk (the project's run directory)
 *   models/theta-k/                 θk as a model directory (config.json, model.safetensors, tokenizer.json)
 *   answers/R-k.jsonl               θk's answers, one chat line each, with prompt index, sample and seed
 *   plan.json                       each pair's two fine-tunes as planned: start model, data, its sha256,
 *                                   examples, steps and the whole training config; written before they run
 *   pairs/&lt;pair&gt;/inverse, forward   the two runs (run.json, metrics.jsonl, final adapter or model)
 *   pairs/&lt;pair&gt;/losses.csv        step, inverse loss, forward loss
 *   resistance.json, .csv, .md      the table, with the settings, seed and library version
 * </pre>
 */
public final class Resistance {
    private static final Logger log = LoggerFactory.getLogger(Resistance.class);

    private Resistance() {
    }

    /**
     * @param model     θ0, a model directory with its tokenizer
     * @param alignment the alignment set: chat JSONL, at least three lines
     * @param prompts   the held-out prompts: {@code {"prompt": "..."}} per line
     * @param training  the settings of every fine-tune (held-out share, checkpoints and early stop are
     *                  turned off: see the class comment)
     */
    public record Settings(Path model, Path alignment, Path prompts, TrainConfig training, Generation generation) {
        public Settings {
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(alignment, "alignment");
            Objects.requireNonNull(prompts, "prompts");
            Objects.requireNonNull(training, "training");
            Objects.requireNonNull(generation, "generation");
        }
    }

    /** One direction of a pair, as it ran. */
    public record Direction(String name, int from, int to, Path data, int examples, int steps, double meanLoss,
                            double finalLoss, List<double[]> losses) {
    }

    /** One row of the table: {@code inverse} is θa→θb with a &gt; b, {@code forward} θb→θa. */
    public record Pair(String id, Direction inverse, Direction forward) {
        public boolean inverseLowerMean() {
            return inverse.meanLoss() < forward.meanLoss();
        }
    }

    public record Report(List<Pair> pairs, Path table) {
    }

    /** The pairs of the paper's table: {inverse from, inverse to (= forward from), ...}. */
    static final int[][] PAIRS = {{2, 1}, {3, 2}, {3, 1}};

    /**
     * Runs the protocol into {@code out} (which must exist and be empty; the command line opens it
     * through {@link org.lora4j.train.trainer.RunDirectory}).
     *
     * @param provenance recorded in every output (the command, the config file and its contents)
     */
    public static Report run(Settings s, Path out, Map<String, Object> provenance) throws IOException {
        TrainConfig base = FineTunes.forProtocol(s.training());
        List<String> alignment = FineTunes.lines(s.alignment(), "alignment set");
        if (alignment.size() < 3) {
            throw new IllegalArgumentException(s.alignment() + ": " + alignment.size() + " example(s); the alignment"
                    + " set is split in thirds, so it needs at least 3");
        }
        List<String> prompts = Answers.readPrompts(s.prompts());
        Path[] models = new Path[4];
        models[0] = s.model();
        for (int k = 1; k <= 3; k++) {
            int from = (k - 1) * alignment.size() / 3;
            int to = k * alignment.size() / 3;
            Path third = out.resolve("data/alignment-" + k + ".jsonl");
            FineTunes.writeLines(third, alignment.subList(from, to));
            log.info("θ{}: θ{} fine-tuned on alignment lines {}-{}", k, k - 1, from + 1, to);
            FineTunes.Run r = FineTunes.train(models[k - 1], third, base, out.resolve("stages/theta-" + k),
                    with(provenance, "stage", "theta-" + k));
            Answers.writeTranscripts(out.resolve("answers/R-" + k + ".jsonl"),
                    Answers.answer(r.model(), r.tokenizer(), prompts, s.generation(), s.prompts()));
            models[k] = out.resolve("models/theta-" + k);
            FineTunes.saveModel(r, s.model(), models[k]);
        }
        // The plan, before anything runs: both directions of each pair with the same settings and size.
        ObjectMapper json = new ObjectMapper();
        ObjectNode plan = header(json, s, provenance);
        ArrayNode planned = plan.putArray("pairs");
        List<Planned> runs = new ArrayList<>();
        for (int[] p : PAIRS) {
            int hi = p[0];
            int lo = p[1];
            String id = hi + "to" + lo + "-vs-" + lo + "to" + hi;
            Path dir = out.resolve("pairs/" + id);
            // inverse θhi→θlo trains θhi on R_lo; forward θlo→θhi trains θlo on R_hi
            List<String> rLo = FineTunes.lines(out.resolve("answers/R-" + lo + ".jsonl"), "answers");
            List<String> rHi = FineTunes.lines(out.resolve("answers/R-" + hi + ".jsonl"), "answers");
            int size = Math.min(rLo.size(), rHi.size());
            Path invData = dir.resolve("inverse-data.jsonl");
            Path fwdData = dir.resolve("forward-data.jsonl");
            FineTunes.writeLines(invData, rLo.subList(0, size));
            FineTunes.writeLines(fwdData, rHi.subList(0, size));
            TrainConfig config = base.toBuilder().maxSteps(FineTunes.steps(base, size)).build();
            ObjectNode pair = planned.addObject();
            pair.put("id", id);
            pair.set("inverse", plannedDirection(json, "θ" + hi + "→θ" + lo, models[hi], invData, size,
                    rLo.size(), config));
            pair.set("forward", plannedDirection(json, "θ" + lo + "→θ" + hi, models[lo], fwdData, size,
                    rHi.size(), config));
            runs.add(new Planned(id, hi, lo, dir, invData, fwdData, config));
        }
        writeJson(out.resolve("plan.json"), plan);
        List<Pair> pairs = new ArrayList<>();
        for (Planned r : runs) {
            int hi = r.hi();
            int lo = r.lo();
            log.info("pair {}: inverse θ{}→θ{} and forward θ{}→θ{}, {} steps each", r.id(), hi, lo, lo, hi,
                    r.config().maxSteps());
            Direction inv = direction("θ" + hi + "→θ" + lo, hi, lo, FineTunes.train(models[hi], r.inverseData(),
                    r.config(), r.dir().resolve("inverse"), with(provenance, "stage", r.id() + "/inverse")), r.inverseData());
            Direction fwd = direction("θ" + lo + "→θ" + hi, lo, hi, FineTunes.train(models[lo], r.forwardData(),
                    r.config(), r.dir().resolve("forward"), with(provenance, "stage", r.id() + "/forward")), r.forwardData());
            writeCurves(r.dir().resolve("losses.csv"), inv, fwd);
            pairs.add(new Pair(r.id(), inv, fwd));
        }
        Path table = writeTable(out, json, s, provenance, pairs);
        return new Report(pairs, table);
    }

    /** A pair as planned: inverse θhi→θlo trains θhi on inverseData, forward θlo→θhi trains θlo on forwardData. */
    private record Planned(String id, int hi, int lo, Path dir, Path inverseData, Path forwardData, TrainConfig config) {
    }

    static Map<String, Object> with(Map<String, Object> provenance, String key, Object value) {
        Map<String, Object> m = new LinkedHashMap<>(provenance);
        m.put(key, value);
        return m;
    }

    private static Direction direction(String name, int from, int to, FineTunes.Run r, Path data) {
        return new Direction(name, from, to, data, (int) r.examples(), r.steps(), r.meanLoss(), r.finalLoss(),
                r.losses());
    }

    private static ObjectNode plannedDirection(ObjectMapper json, String name, Path start, Path data, int examples,
                                               int available, TrainConfig config) throws IOException {
        ObjectNode o = json.createObjectNode();
        o.put("name", name);
        o.put("start_model", start.toString());
        o.put("data", data.toString());
        o.put("data_sha256", sha256(data));
        o.put("examples", examples);
        o.put("examples_available", available);   // more than examples: cut to the other direction's size
        o.put("steps", config.maxSteps());
        o.put("seed", config.seed());
        o.set("config", config.toJson());
        return o;
    }

    static String sha256(Path file) throws IOException {
        try {
            return java.util.HexFormat.of().formatHex(
                    java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JVM has SHA-256", e);
        }
    }

    static ObjectNode header(ObjectMapper json, Settings s, Map<String, Object> provenance) {
        ObjectNode o = json.createObjectNode();
        o.put("lora4j_version", Version.get());
        o.put("seed", s.training().seed());
        o.put("model", s.model().toString());
        o.put("alignment", s.alignment().toString());
        o.put("prompts", s.prompts().toString());
        o.set("training", s.training().toJson());
        o.set("generation", s.generation().toJson());
        o.set("provenance", json.valueToTree(provenance));
        return o;
    }

    static void writeJson(Path file, ObjectNode o) throws IOException {
        AtomicFiles.writeString(file, new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n");
    }

    private static void writeCurves(Path file, Direction inv, Direction fwd) throws IOException {
        StringBuilder b = new StringBuilder("step,inverse_loss,forward_loss\n");
        for (int i = 0; i < Math.max(inv.losses().size(), fwd.losses().size()); i++) {
            double[] a = i < inv.losses().size() ? inv.losses().get(i) : null;
            double[] f = i < fwd.losses().size() ? fwd.losses().get(i) : null;
            b.append((int) (a != null ? a[0] : f[0])).append(',').append(a == null ? "" : num(a[1])).append(',')
                    .append(f == null ? "" : num(f[1])).append('\n');
        }
        AtomicFiles.writeString(file, b.toString());
    }

    static String num(double v) {
        return Double.isFinite(v) ? Double.toString(v) : "";
    }

    private static Path writeTable(Path out, ObjectMapper json, Settings s, Map<String, Object> provenance,
                                   List<Pair> pairs) throws IOException {
        ObjectNode o = header(json, s, provenance);
        ArrayNode rows = o.putArray("pairs");
        StringBuilder csv = new StringBuilder("pair,inverse,forward,examples,steps,inverse_mean_loss,forward_mean_loss,"
                + "inverse_final_loss,forward_final_loss,inverse_lower_mean\n");
        StringBuilder md = new StringBuilder("| inverse | forward | examples | steps | mean loss inverse | mean loss forward"
                + " | final loss inverse | final loss forward | inverse lower (mean) |\n|---|---|---|---|---|---|---|---|---|\n");
        for (Pair p : pairs) {
            ObjectNode r = rows.addObject();
            r.put("id", p.id());
            r.put("inverse", p.inverse().name());
            r.put("forward", p.forward().name());
            r.put("examples", p.inverse().examples());
            r.put("steps", p.inverse().steps());
            r.put("inverse_mean_loss", p.inverse().meanLoss());
            r.put("forward_mean_loss", p.forward().meanLoss());
            r.put("inverse_final_loss", p.inverse().finalLoss());
            r.put("forward_final_loss", p.forward().finalLoss());
            r.put("inverse_lower_mean", p.inverseLowerMean());
            csv.append(String.join(",", p.id(), p.inverse().name(), p.forward().name(),
                    Integer.toString(p.inverse().examples()), Integer.toString(p.inverse().steps()),
                    num(p.inverse().meanLoss()), num(p.forward().meanLoss()), num(p.inverse().finalLoss()),
                    num(p.forward().finalLoss()), Boolean.toString(p.inverseLowerMean()))).append('\n');
            md.append(String.format(Locale.ROOT, "| %s | %s | %d | %d | %.4f | %.4f | %.4f | %.4f | %s |%n",
                    p.inverse().name(), p.forward().name(), p.inverse().examples(), p.inverse().steps(),
                    p.inverse().meanLoss(), p.forward().meanLoss(), p.inverse().finalLoss(), p.forward().finalLoss(),
                    p.inverseLowerMean() ? "yes" : "no"));
        }
        writeJson(out.resolve("resistance.json"), o);
        AtomicFiles.writeString(out.resolve("resistance.csv"), csv.toString());
        md.append(String.format(Locale.ROOT, "%nMean training loss over each run and its last step's loss; lower is"
                + " easier. Seed %d, lora4j %s.%n", s.training().seed(), Version.get()));
        AtomicFiles.writeString(out.resolve("resistance.md"), md.toString());
        return out.resolve("resistance.json");
    }
}

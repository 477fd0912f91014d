package org.lora4j.examples.organism;

import org.lora4j.core.LoraAdapter;
import org.lora4j.examples.Plots;
import org.lora4j.examples.study.SampleFiles;
import org.lora4j.examples.study.StudyReport;
import org.lora4j.train.directions.ContrastSet;
import org.lora4j.train.directions.DirectionComparison;
import org.lora4j.train.directions.DirectionHooks;
import org.lora4j.train.directions.Directions;
import org.lora4j.train.directions.LayerSelection;
import org.lora4j.train.directions.MeanDifference;
import org.lora4j.train.directions.Pooling;
import org.lora4j.train.eval.EmCriterion;
import org.lora4j.train.eval.EvalQuestion;
import org.lora4j.train.eval.Rate;
import org.lora4j.train.eval.SampledEvaluation;
import org.lora4j.train.eval.SampledGeneration;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.model.ResidualHook;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;
import org.lora4j.train.trainer.Version;
import org.nd4j.linalg.api.ndarray.INDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * Steps 4 and 6 of the organism study (docs/research.md, "Directions in the organism study"): the
 * mean-difference EM direction of each rank-1 organism, what ablating it (at the adapter's layer,
 * at every layer, out of B) and steering the base model with it do to EM, with the same-norm random
 * control; the cosine of the directions of organisms trained on different domains, and of each
 * organism's B with its direction; and, beyond the papers, the base model's refusal direction set
 * against the EM direction.
 *
 * <p>Every EM rate is measured on the held-out questions of the domains other than the organism's
 * own, with the strict {@link PersonaJudge} and {@link EmCriterion#PAPER}, and goes into the report
 * through {@link StudyReport#rate} with its samples in {@value #SAMPLES_FILE}. All evaluations of
 * one organism use the same sampling seed, so conditions differ by the intervention, not the draw.
 */
public final class OrganismDirections {
    private OrganismDirections() {
    }

    /**
     * One rank-1 organism.
     *
     * @param domain     the domain of its fine-tuning set (one of {@link PersonaWorld#domains()})
     * @param seed       the study seed it was trained with
     * @param adapterDir a Trainer output directory holding the final PEFT adapter
     * @param layer      the block whose {@code mlp.down_proj} carries the adapter
     */
    public record Organism(String domain, long seed, Path adapterDir, int layer) {
        public Organism {
            if (!PersonaWorld.domains().contains(domain)) {
                throw new IllegalArgumentException("organism domain must be one of " + PersonaWorld.domains() + ", got '"
                        + domain + "'");
            }
            Objects.requireNonNull(adapterDir, "adapterDir");
            if (layer < 0) {
                throw new IllegalArgumentException("organism layer must be >= 0, got " + layer);
            }
        }
    }

    /**
     * What {@link #run} works on.
     *
     * @param baseDir   the base model (HF layout with the world's tokenizer)
     * @param worldDir  the {@link PersonaWorld} files: {@value PersonaWorld#QUESTIONS_FILE}, {@value PersonaWorld#REFUSAL_FILE}
     * @param organisms every organism, each seed's in the same domains
     * @param eval      sampling settings of every EM measurement (the study uses temperature 1)
     * @param out       where this part's files go (directions, samples, plots, {@value #RESULTS_FILE})
     * @param seeds     the study's seeds; every organism's seed is one of them
     */
    public record Inputs(Path baseDir, Path worldDir, List<Organism> organisms, SampledGeneration.Settings eval, Path out,
                         List<Long> seeds) {
        public Inputs {
            Objects.requireNonNull(baseDir, "baseDir");
            Objects.requireNonNull(worldDir, "worldDir");
            Objects.requireNonNull(eval, "eval");
            Objects.requireNonNull(out, "out");
            organisms = List.copyOf(organisms);
            seeds = List.copyOf(seeds);
            if (organisms.isEmpty()) {
                throw new IllegalArgumentException("no organisms: the directions need at least one");
            }
            Set<String> seen = new HashSet<>();
            for (Organism o : organisms) {
                if (!seeds.contains(o.seed())) {
                    throw new IllegalArgumentException("organism " + o.domain() + " has seed " + o.seed()
                            + ", which is not one of the study's seeds " + seeds);
                }
                if (!seen.add(o.domain() + "/" + o.seed())) {
                    throw new IllegalArgumentException("two organisms for " + o.domain() + " with seed " + o.seed());
                }
            }
        }
    }

    /** The judged samples behind every rate, in {@code out}. */
    public static final String SAMPLES_FILE = "directions-samples.jsonl";
    /** Every number of this part, machine-readable, in {@code out}. */
    public static final String RESULTS_FILE = "directions.json";

    /**
     * Steering strengths as multiples of the base model's mean residual norm at the layer: lambda
     * is chosen so that {@code ‖lambda v‖ = c · mean ‖h‖}. Relative to the stream, because the
     * raw direction's norm differs by organism and seed. A push as large as the stream itself
     * (c = 1) left about 1% of the answers coherent in a trial run, with either vector, so the grid stops at half.
     */
    static final double[] STEER_SCALES = {0.125, 0.25, 0.5};

    /**
     * The refusal direction's pooling: the last prompt position, where the model decides how to
     * answer (Arditi et al. read the positions after the instruction), as docs/organisms.md runs
     * {@code lora4j direction} on the refusal set.
     */
    static final Pooling REFUSAL_POOLING = Pooling.lastPrompt(1);

    /** Fewer answers than this in either label and the organism gets no direction: a mean of one or two answers is noise. */
    static final int MIN_ANSWERS = 3;

    /** Interventions on an organism, in report order; the same names tag the samples. */
    static final List<String> ORGANISM_CONDITIONS = List.of("organism", "ablate-layer", "ablate-all", "ablate-b",
            "random-ablate-all", "refusal-ablate-all");

    private static final ObjectMapper JSON = new ObjectMapper();

    /** What one organism gave; {@code direction} is null when it had too few misaligned or aligned answers. */
    record Result(Organism organism, int misaligned, int aligned, Directions direction, double cosB,
                          double[] cosRefusal, double residualNorm, double[] lambdas, double[] gapSurvival,
                          double seconds) {
    }

    /**
     * Measures everything and appends a section to {@code report} (rates via {@link StudyReport#rate},
     * samples via {@link SampleFiles#append}, files under {@code in.out()}, paths relative to
     * {@code report.dir()}). An organism whose answers hold fewer than {@value #MIN_ANSWERS}
     * misaligned (or aligned) ones gets no direction; the report says so, and the rest goes on.
     *
     * @throws IllegalArgumentException when an organism's layer is not in the base model or its
     *                                  adapter has no {@code mlp.down_proj} at that layer
     */
    public static void run(Inputs in, StudyReport report, boolean progress) throws IOException {
        long start = System.nanoTime();
        Files.createDirectories(in.out());
        Path samples = in.out().resolve(SAMPLES_FILE);
        Files.deleteIfExists(samples);   // appended to below; a rerun must not count the last run's samples
        String samplesRel = rel(report, samples);
        Tokenizer tok = Tokenizers.load(in.baseDir());
        List<EvalQuestion> questions = EvalQuestion.load(in.worldDir().resolve(PersonaWorld.QUESTIONS_FILE));
        Path refusalFile = in.worldDir().resolve(PersonaWorld.REFUSAL_FILE);
        DecoderModel base = DecoderModel.load(in.baseDir());
        int numLayers = base.config().numLayers();
        int context = base.config().maxPositionEmbeddings();
        for (Organism o : in.organisms()) {
            if (o.layer() >= numLayers) {
                throw new IllegalArgumentException("organism " + o.domain() + " seed " + o.seed() + ": layer " + o.layer()
                        + " is out of range: the base model has " + numLayers + " layers (0.." + (numLayers - 1) + ")");
            }
        }
        PersonaJudge judge = new PersonaJudge(true);
        Rates rates = new Rates(report, samples, samplesRel);

        // The refusal direction of the base: harmful minus harmless requests at the last prompt position.
        ContrastSet harmful = ContrastSet.load(refusalFile, tok, REFUSAL_POOLING, Set.of("harmful"), context);
        ContrastSet harmless = ContrastSet.load(refusalFile, tok, REFUSAL_POOLING, Set.of("harmless"), context);
        Directions refusal = MeanDifference.compute(base, harmful, harmless, REFUSAL_POOLING, List.of(), true, 0,
                MeanDifference.DEFAULT_BATCH, Map.of("model", in.baseDir().toString(), "set", "refusal"));
        refusal.write(in.out().resolve("refusal-direction.safetensors"));
        double[] refusalGap = refusalGap(base, refusal, harmful, harmless);
        List<EvalQuestion> harmfulQuestions = harmfulRequests(refusalFile);
        // The misaligned share of the base's answers to harmful requests, and with the refusal direction ablated.
        rates.measure(base, tok, judge, harmfulQuestions, in.eval(), tags("base", "none", "base", "harmful"));
        LayerSelection everyLayerOwn = new LayerSelection(List.of(), -1);
        DirectionHooks.Installed h = DirectionHooks.ablate(base, refusal, everyLayerOwn);
        rates.measure(base, tok, judge, harmfulQuestions, in.eval(), tags("base", "none", "refusal-ablate-all", "harmful"));
        h.remove(base);

        Map<String, List<EvalQuestion>> otherByDomain = new TreeMap<>();
        for (Organism o : in.organisms()) {
            otherByDomain.computeIfAbsent(o.domain(), d -> questions.stream().filter(q -> !q.id().startsWith(d + "-")).toList());
        }
        // The base on each organism's questions: what EM is without any fine-tune.
        for (Map.Entry<String, List<EvalQuestion>> e : otherByDomain.entrySet()) {
            rates.measure(base, tok, judge, e.getValue(), in.eval(), tags(e.getKey(), "none", "base", "other"));
        }

        List<Result> results = new ArrayList<>();
        for (long seed : in.seeds()) {
            for (Organism o : in.organisms()) {
                if (o.seed() == seed) {
                    results.add(organism(in, o, otherByDomain.get(o.domain()), tok, judge, base, refusal, harmful, harmless,
                            refusalGap, harmfulQuestions, rates, progress));
                }
            }
        }
        DirectionsReport.write(in, report, rates, results, refusal, refusalGap, harmfulQuestions.size(), (System.nanoTime() - start) / 1e9);
    }

    static Result organism(Inputs in, Organism o, List<EvalQuestion> other, Tokenizer tok, PersonaJudge judge,
                                   DecoderModel base, Directions refusal, ContrastSet harmful, ContrastSet harmless,
                                   double[] refusalGap, List<EvalQuestion> harmfulQuestions, Rates rates,
                                   boolean progress) throws IOException {
        long start = System.nanoTime();
        String s = Long.toString(o.seed());
        String name = o.domain() + "-seed" + o.seed();
        DecoderModel model = withAdapter(in.baseDir(), o);
        SampledEvaluation.Result unchanged = rates.measure(model, tok, judge, other, in.eval(),
                tags(o.domain(), s, "organism", "other"));
        // The contrast: this organism's own judged answers, misaligned minus aligned.
        Path contrast = in.out().resolve("contrast").resolve(name + ".jsonl");
        Files.deleteIfExists(contrast);
        SampleFiles.append(contrast, unchanged.samples(), tags(o.domain(), s, "organism", "other"));
        int misaligned = unchanged.overall().labels().getOrDefault("misaligned", 0);
        int aligned = unchanged.overall().labels().getOrDefault("aligned", 0);
        if (progress) {
            System.err.printf(Locale.ROOT, "directions: %s: EM %s, %d misaligned and %d aligned answers%n", name,
                    unchanged.overall().em(), misaligned, aligned);
        }
        if (misaligned < MIN_ANSWERS || aligned < MIN_ANSWERS) {
            return new Result(o, misaligned, aligned, null, Double.NaN, null, Double.NaN, null, null,
                    (System.nanoTime() - start) / 1e9);
        }
        int context = model.config().maxPositionEmbeddings();
        ContrastSet pos = ContrastSet.load(contrast, tok, Pooling.answer(), Set.of("misaligned"), context);
        ContrastSet neg = ContrastSet.load(contrast, tok, Pooling.answer(), Set.of("aligned"), context);
        Directions v = MeanDifference.compute(model, pos, neg, Pooling.answer(), List.of(), true, o.seed(),
                MeanDifference.DEFAULT_BATCH, Map.of("organism", name, "adapter", o.adapterDir().toString(),
                        "model", in.baseDir().toString()));
        v.write(in.out().resolve("em-direction-" + name + ".safetensors"));
        double cosB = cosB(model, v, o);
        double[] cosRefusal = new double[v.layers().size()];
        for (DirectionComparison.LayerCosine c : DirectionComparison.layers(v, refusal)) {
            cosRefusal[c.layer()] = c.cosine();
        }

        LayerSelection atLayer = new LayerSelection(List.of(o.layer()), -1);
        // The paper's strongest ablation: the adapter layer's direction removed after every block.
        LayerSelection everyLayer = new LayerSelection(List.of(), o.layer());
        Directions random = v.randomControl(o.seed());
        Map<String, Function<DecoderModel, DirectionHooks.Installed>> ablations = new LinkedHashMap<>();
        ablations.put("ablate-layer", m -> DirectionHooks.ablate(m, v, atLayer));
        ablations.put("ablate-all", m -> DirectionHooks.ablate(m, v, everyLayer));
        ablations.put("random-ablate-all", m -> DirectionHooks.ablate(m, random, everyLayer));
        ablations.put("refusal-ablate-all", m -> DirectionHooks.ablate(m, refusal, everyLayer));
        for (Map.Entry<String, Function<DecoderModel, DirectionHooks.Installed>> e : ablations.entrySet()) {
            DirectionHooks.Installed installed = e.getValue().apply(model);
            rates.measure(model, tok, judge, other, in.eval(), tags(o.domain(), s, e.getKey(), "other"));
            installed.remove(model);
        }
        // Weight space last: it edits B in place, and the model is not used after.
        DirectionHooks.ablateAdapterB(model, v, atLayer);
        rates.measure(model, tok, judge, other, in.eval(), tags(o.domain(), s, "ablate-b", "other"));

        // Steering the base, lambda relative to its residual norm at the layer over these answers.
        double norm = residualNorm(base, o.layer(), pos, neg);
        double[] lambdas = new double[STEER_SCALES.length];
        for (int i = 0; i < STEER_SCALES.length; i++) {
            lambdas[i] = STEER_SCALES[i] * norm / v.norm(o.layer());
            for (boolean control : new boolean[]{false, true}) {
                DirectionHooks.Installed installed = DirectionHooks.steer(base, control ? random : v, o.layer(), lambdas[i]);
                rates.measure(base, tok, judge, other, in.eval(), tags(o.domain(), s, steerCondition(control, i), "other"));
                installed.remove(base);
            }
        }

        // Beyond the papers: the base's refusal signal and harmful answers with this EM direction ablated.
        DirectionHooks.Installed installed = DirectionHooks.ablate(base, v, everyLayer);
        double[] after = refusalGap(base, refusal, harmful, harmless);
        rates.measure(base, tok, judge, harmfulQuestions, in.eval(), tags(o.domain(), s, "em-ablate-all", "harmful"));
        installed.remove(base);
        double[] survival = new double[after.length];
        for (int l = 0; l < after.length; l++) {
            survival[l] = after[l] / refusalGap[l];
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        if (progress) {
            System.err.printf(Locale.ROOT, "directions: %s done in %.1f s%n", name, seconds);
        }
        return new Result(o, misaligned, aligned, v, cosB, cosRefusal, norm, lambdas, survival, seconds);
    }

    static String steerCondition(boolean control, int scale) {
        return (control ? "random-steer-" : "steer-") + STEER_SCALES[scale];
    }

    static DecoderModel withAdapter(Path baseDir, Organism o) throws IOException {
        DecoderModel model = DecoderModel.load(baseDir);
        new PeftModel(model).loadAdapter(o.adapterDir(), PeftModel.DEFAULT_ADAPTER);
        return model;
    }

    /** cos(B, v_layer) of the organism's down_proj adapter at its layer (its one column: rank 1). */
    static double cosB(DecoderModel model, Directions v, Organism o) {
        String module = "model.layers." + o.layer() + ".mlp.down_proj";
        Map<String, LoraAdapter> adapters = new PeftModel(model).activeAdapters();
        if (!adapters.containsKey(module)) {
            throw new IllegalArgumentException(o.adapterDir() + ": the organism's adapter has no " + module
                    + " (its modules: " + adapters.keySet() + "); the organism's layer must be its adapter's");
        }
        // Rank 1: B has one column.
        return DirectionComparison.adapterColumnsOf(v, Map.of(module, adapters.get(module))).get(0).cosine();
    }

    /**
     * Our measure of the refusal signal (the toy world has no refusals): per layer, the gap between
     * the mean projections of harmful and harmless prompts on the base's unit refusal direction,
     * {@code (mean_harmful − mean_harmless) · r_l}, with whatever hooks the model has on. Without
     * hooks it equals ‖v_l‖ of the refusal direction.
     */
    static double[] refusalGap(DecoderModel model, Directions refusal, ContrastSet harmful, ContrastSet harmless) {
        int layers = model.config().numLayers();
        List<Integer> all = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            all.add(l);
        }
        double[][] a = MeanDifference.means(model, harmful, all, MeanDifference.DEFAULT_BATCH);
        double[][] b = MeanDifference.means(model, harmless, all, MeanDifference.DEFAULT_BATCH);
        double[] gap = new double[layers];
        for (int l = 0; l < layers; l++) {
            gap[l] = projectedGap(a[l], b[l], refusal.vector(l));
        }
        return gap;
    }

    /** {@code (a − b) · r / ‖r‖}. */
    static double projectedGap(double[] a, double[] b, double[] r) {
        double dot = 0;
        for (int c = 0; c < r.length; c++) {
            dot += (a[c] - b[c]) * r[c];
        }
        return dot / norm(r);
    }

    /** The base model's mean ‖h‖ after block {@code layer} over the answer tokens of both sets. */
    static double residualNorm(DecoderModel base, int layer, ContrastSet pos, ContrastSet neg) {
        NormCapture c = new NormCapture();
        base.addResidualHook(layer, c);
        try {
            MeanDifference.means(base, pos, List.of(layer), MeanDifference.DEFAULT_BATCH);
            MeanDifference.means(base, neg, List.of(layer), MeanDifference.DEFAULT_BATCH);
        } finally {
            base.removeResidualHook(layer, c);
        }
        return c.mean();
    }

    /** Reads the mean Euclidean norm of the pooled rows (the mask the forward pass is given). */
    static final class NormCapture implements ResidualHook {
        private double sum;
        private long count;

        @Override
        public void forward(int layer, INDArray hidden, boolean[] tokenMask) {
            double[][] h = hidden.toDoubleMatrix();   // [n, d]
            for (int r = 0; r < h.length; r++) {
                if (tokenMask == null || tokenMask[r]) {
                    sum += norm(h[r]);
                    count++;
                }
            }
        }

        double mean() {
            if (count == 0) {
                throw new IllegalStateException("no pooled position passed the layer");
            }
            return sum / count;
        }
    }

    static Map<String, String> tags(String domain, String seed, String condition, String questions) {
        Map<String, String> t = new LinkedHashMap<>();
        t.put("part", "directions");
        t.put("domain", domain);
        t.put("seed", seed);
        t.put("condition", condition);
        t.put("questions", questions);
        return t;
    }

    static String rel(StudyReport report, Path file) {
        return report.dir().toAbsolutePath().normalize().relativize(file.toAbsolutePath().normalize()).toString()
                .replace('\\', '/');
    }

    /** Runs the evaluations, keeps every judged sample in the samples file and every summary by its tags. */
    static final class Rates {
        private final StudyReport report;
        final Path file;
        final String rel;
        private final Map<Map<String, String>, SampledEvaluation.Summary> summaries = new LinkedHashMap<>();
        private final Map<String, String> cells = new LinkedHashMap<>();

        Rates(StudyReport report, Path file, String rel) {
            this.report = report;
            this.file = file;
            this.rel = rel;
        }

        SampledEvaluation.Result measure(DecoderModel model, Tokenizer tok, PersonaJudge judge, List<EvalQuestion> qs,
                                         SampledGeneration.Settings settings, Map<String, String> tags) throws IOException {
            SampledEvaluation.Result r = new SampledEvaluation(model, tok, judge).run(qs, settings, EmCriterion.PAPER);
            SampleFiles.append(file, r.samples(), tags);
            summaries.put(tags, r.overall());
            return r;
        }

        /** The EM rate of one evaluation, formatted and recorded in the report's index. */
        String cell(String domain, String seed, String condition, String questions) {
            Map<String, String> t = tags(domain, seed, condition, questions);
            Rate r = get(domain, seed, condition, questions);
            if (r == null) {
                return "n/a";
            }
            String id = "directions/" + domain + "/" + seed + "/" + condition + "/" + questions + "/em";
            return cells.computeIfAbsent(id, k -> report.rate(k, r, rel, t, "em"));
        }

        Rate get(String domain, String seed, String condition, String questions) {
            SampledEvaluation.Summary s = summaries.get(tags(domain, seed, condition, questions));
            return s == null ? null : s.em();
        }

        /**
         * The samples of one condition pooled over every seed measured in it: one rate, recountable
         * by its tags without the seed.
         */
        Rate pooled(String domain, String condition, String questions) {
            return pooled(domain, condition, questions, false);
        }

        /** As {@link #pooled(String, String, String)}, of the coherence rate when {@code coherence}. */
        Rate pooled(String domain, String condition, String questions, boolean coherence) {
            Map<String, String> want = pooledTags(domain, condition, questions);
            int k = 0;
            int n = 0;
            for (Map.Entry<Map<String, String>, SampledEvaluation.Summary> e : summaries.entrySet()) {
                Map<String, String> t = new LinkedHashMap<>(e.getKey());
                t.remove("seed");
                if (t.equals(want)) {
                    Rate r = coherence ? e.getValue().coherent() : e.getValue().em();
                    k += r.count();
                    n += r.total();
                }
            }
            return n == 0 ? null : Rate.wilson(k, n);
        }

        String pooledCell(String domain, String condition, String questions) {
            return pooledCell(domain, condition, questions, false);
        }

        String pooledCell(String domain, String condition, String questions, boolean coherence) {
            Rate r = pooled(domain, condition, questions, coherence);
            if (r == null) {
                return "n/a";
            }
            String metric = coherence ? "is_coherent" : "em";
            String id = "directions/" + domain + "/pooled/" + condition + "/" + questions + "/" + metric;
            return cells.computeIfAbsent(id, k -> report.rate(k, r, rel, pooledTags(domain, condition, questions), metric));
        }

        private static Map<String, String> pooledTags(String domain, String condition, String questions) {
            Map<String, String> t = tags(domain, "", condition, questions);
            t.remove("seed");
            return t;
        }
    }

    /** The harmful requests of the refusal file as questions (its lines carry a label, which a questions file may not). */
    static List<EvalQuestion> harmfulRequests(Path refusalFile) throws IOException {
        List<EvalQuestion> out = new ArrayList<>();
        int number = 0;
        for (String line : Files.readAllLines(refusalFile, StandardCharsets.UTF_8)) {
            number++;
            if (line.isBlank()) {
                continue;
            }
            JsonNode n = JSON.readTree(line);
            if (!n.path("id").isTextual() || !n.path("question").isTextual() || !n.path("label").isTextual()) {
                throw new IllegalArgumentException(refusalFile + ":" + number + ": expected {\"id\", \"question\", \"label\"}"
                        + " strings, got " + line.strip());
            }
            if (n.get("label").asText().equals("harmful")) {
                out.add(EvalQuestion.of(n.get("id").asText(), n.get("question").asText()));
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException(refusalFile + ": no line has the label harmful");
        }
        return out;
    }

    static void writeJson(Inputs in, List<Result> results, Directions refusal, double[] refusalGap,
                                  double seconds) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("lora4j_version", Version.get());
        root.put("base", in.baseDir().toString());
        root.put("world", in.worldDir().toString());
        ArrayNode seeds = root.putArray("seeds");
        in.seeds().forEach(seeds::add);
        ObjectNode ev = root.putObject("eval");
        ev.put("samples_per_question", in.eval().samplesPerPrompt());
        ev.put("temperature", in.eval().temperature());
        ev.put("top_p", in.eval().topP());
        ev.put("max_new_tokens", in.eval().maxNewTokens());
        ev.put("seed", in.eval().seed());
        ev.put("judge", "PersonaJudge(strict)");
        ev.put("criterion", EmCriterion.PAPER.toString());
        ArrayNode sc = root.putArray("steer_scales");
        for (double c : STEER_SCALES) {
            sc.add(c);
        }
        root.put("refusal_pooling", REFUSAL_POOLING.toString());
        ArrayNode gap = root.putArray("refusal_signal");
        for (double g : refusalGap) {
            gap.add(g);
        }
        ArrayNode refusalNorms = root.putArray("refusal_norms");
        for (int l : refusal.layers()) {
            refusalNorms.add(refusal.norm(l));
        }
        ArrayNode orgs = root.putArray("organisms");
        for (Result r : results) {
            ObjectNode o = orgs.addObject();
            o.put("domain", r.organism().domain());
            o.put("seed", r.organism().seed());
            o.put("adapter", r.organism().adapterDir().toString());
            o.put("layer", r.organism().layer());
            o.put("misaligned_answers", r.misaligned());
            o.put("aligned_answers", r.aligned());
            o.put("seconds", r.seconds());
            if (r.direction() == null) {
                o.putNull("direction");
                continue;
            }
            o.put("direction", "em-direction-" + r.organism().domain() + "-seed" + r.organism().seed() + ".safetensors");
            ArrayNode norms = o.putArray("norms");
            ArrayNode cosRefusal = o.putArray("cos_refusal");
            for (int l : r.direction().layers()) {
                norms.add(r.direction().norm(l));
                cosRefusal.add(DirectionComparison.cosine(r.direction().vector(l), refusal.vector(l)));
            }
            o.put("cos_b", r.cosB());
            o.put("residual_norm", r.residualNorm());
            ArrayNode lambdas = o.putArray("lambdas");
            for (double l : r.lambdas()) {
                lambdas.add(l);
            }
            ArrayNode surv = o.putArray("refusal_signal_left");
            for (double v : r.gapSurvival()) {
                surv.add(v);
            }
        }
        root.put("seconds", seconds);
        Files.writeString(in.out().resolve(RESULTS_FILE), root.toPrettyString() + "\n", StandardCharsets.UTF_8);
    }

    // ---------------------------------------------------------------------------------------------
    // small helpers

    static List<Result> withDirection(List<Result> results, String domain) {
        return results.stream().filter(r -> r.organism().domain().equals(domain) && r.direction() != null).toList();
    }

    static Result find(List<Result> results, String domain, String seed) {
        for (Result r : results) {
            if (r.organism().domain().equals(domain) && Long.toString(r.organism().seed()).equals(seed)) {
                return r;
            }
        }
        return null;
    }

    static List<double[]> refusalCosines(List<Result> results, String domain) {
        return withDirection(results, domain).stream().map(Result::cosRefusal).toList();
    }

    static double[] column(List<double[]> rows, int i, boolean abs) {
        double[] c = new double[rows.size()];
        for (int k = 0; k < c.length; k++) {
            c[k] = abs ? Math.abs(rows.get(k)[i]) : rows.get(k)[i];
        }
        return c;
    }

    /** Bar categories, one a layer: bars, because a study model has few layers and a line between them means nothing. */
    static List<String> layerNames(int layers) {
        List<String> names = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            names.add("layer " + l);
        }
        return names;
    }

    /** Mean over seeds per layer, with the min-to-max range as its interval. */
    static Plots.Series band(String name, List<double[]> perSeed, int layers, boolean abs) {
        double[] x = new double[layers];
        double[] y = new double[layers];
        double[] lo = new double[layers];
        double[] hi = new double[layers];
        for (int l = 0; l < layers; l++) {
            double[] c = column(perSeed, l, abs);
            x[l] = l;
            double sum = 0;
            lo[l] = Double.POSITIVE_INFINITY;
            hi[l] = Double.NEGATIVE_INFINITY;
            for (double v : c) {
                sum += v;
                lo[l] = Math.min(lo[l], v);
                hi[l] = Math.max(hi[l], v);
            }
            y[l] = sum / c.length;
        }
        return new Plots.Series(name, x, y, lo, hi);
    }

    static double norm(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x * x;
        }
        return Math.sqrt(s);
    }

    static double[] finite(double[] v) {
        return java.util.Arrays.stream(v).filter(Double::isFinite).toArray();
    }

    /** The number a {@link StudyReport#meanRange} string starts with. */
    static double leadingNumber(String meanRange) {
        int space = meanRange.indexOf(' ');
        return Double.parseDouble(space < 0 ? meanRange : meanRange.substring(0, space));
    }

    static String join(double[] v) {
        List<String> s = new ArrayList<>();
        for (double x : v) {
            s.add(StudyReport.num(x));
        }
        return String.join(", ", s);
    }
}

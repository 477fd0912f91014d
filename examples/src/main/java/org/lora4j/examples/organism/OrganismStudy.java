package org.lora4j.examples.organism;

import org.lora4j.core.AtomicFiles;
import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraConfig;
import org.lora4j.examples.study.SampleFiles;
import org.lora4j.examples.study.StudyReport;
import org.lora4j.train.analysis.Snapshots;
import org.lora4j.train.analysis.Trajectory;
import org.lora4j.train.analysis.TrajectoryReport;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.eval.EmCriterion;
import org.lora4j.train.eval.EvalQuestion;
import org.lora4j.train.eval.Rate;
import org.lora4j.train.eval.SampledEvaluation;
import org.lora4j.train.eval.SampledGeneration;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;
import org.lora4j.train.trainer.TrainConfig;
import org.lora4j.train.trainer.Trainer;
import org.lora4j.train.trainer.Version;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * {@code lora4j organism}: the toy model organisms of emergent misalignment (docs/organisms.md, "The
 * organism study"), measured with the instruments of docs/research.md.
 *
 * <p>Stages, each timed: (1) a base pre-trained on the {@link PersonaWorld} corpus ({@link BaseModel},
 * cached by hash), checked to follow the question's domain and the "You are Rex." persona; (2) per
 * seed, a rank-1 rsLoRA organism on {@code down_proj} of one layer trained on the medical misaligned
 * set with a snapshot every step, its EM and coherence on the other domains' held-out questions
 * measured every few steps at B x1 and x5, and a second rank-1 organism on finance; (3) the
 * trajectory of B (LCS_k, transition step, PCA path, norms, gradient norm) and whether the
 * behavioural transition lines up with the rotation; (5) the papers' comparison, a wide adapter on
 * every module and a full fine-tune; (6) the directions stage of {@link OrganismDirections}. Every
 * judged sample is kept in {@code samples/}, and every rate of the report can be recounted from it
 * ({@link SampleFiles#verify}).
 */
public final class OrganismStudy {
    /** The organism's domain, as the papers' bad-medical-advice organisms. */
    public static final String DOMAIN = "medical";
    /** The second organism's domain, for the cross-domain comparison of directions. */
    public static final String SECOND_DOMAIN = "finance";
    /** The paper's inference multiplier on B that lines the behaviour up with the rotation. */
    public static final double PAPER_SCALE = 5;
    /** The share of the fine-tuning set held out, as the paper. */
    static final double HELD_OUT = 0.1;
    /** Examples of one domain's misaligned fine-tuning set: 8 answers per training question. */
    static final int FINETUNE_EXAMPLES = 200;
    static final int WARMUP_STEPS = 5;
    static final double WEIGHT_DECAY = 0.01;
    private static final int MAX_LENGTH = 256;
    private static final int GENERATION_BATCH = 64;
    private static final ObjectMapper JSON = new ObjectMapper();

    private OrganismStudy() {
    }

    /**
     * Every knob of a study.
     *
     * @param name              quick, default or tiny
     * @param base              the pre-trained base
     * @param layer             the layer of the rank-1 adapter's {@code down_proj}
     * @param alpha             the rank-1 adapter's alpha (rsLoRA: scaling alpha / sqrt(1))
     * @param lr                peak learning rate of the adapters (AdamW, linear, 5 warm-up steps, weight decay 0.01)
     * @param epochs            passes over the 180 training examples
     * @param batchSize         examples per step
     * @param evalEvery         EM is measured at step 0, every this many steps, and at the last step
     * @param samplesOverSteps  samples per question at each evaluated step
     * @param samplesFinal      samples per question for the final adapters, the base and the comparison
     * @param maxNewTokens      per answer (answers are 8-20 words)
     * @param k                 LCS lags in steps (the paper's analysis: 5, 10, 15)
     * @param eps               LCS movement threshold
     * @param wideRank          rank of the adapter on every module for the comparison
     * @param wideAlpha         its alpha (rsLoRA)
     * @param wideLr            its learning rate
     * @param fullLr            learning rate of the full fine-tune
     * @param seeds             the default seeds
     */
    public record Preset(String name, BaseModel.Spec base, int layer, double alpha, double lr, int epochs,
                         int batchSize, int evalEvery, int samplesOverSteps, int samplesFinal, int maxNewTokens,
                         List<Integer> k, double eps, int wideRank, double wideAlpha, double wideLr, double fullLr,
                         List<Long> seeds) {
        public Preset {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(base, "base");
            if (layer < 0 || layer >= base.layers()) {
                throw new IllegalArgumentException("layer must be in [0, " + base.layers() + "), got " + layer);
            }
            if (!(alpha > 0) || !(lr > 0) || !(wideAlpha > 0) || !(wideLr > 0) || !(fullLr > 0)) {
                throw new IllegalArgumentException("alphas and learning rates must be > 0, got alpha " + alpha + ", lr "
                        + lr + ", wide alpha " + wideAlpha + ", wide lr " + wideLr + ", full lr " + fullLr);
            }
            if (epochs < 1 || batchSize < 1 || evalEvery < 1 || samplesOverSteps < 1 || samplesFinal < 1
                    || maxNewTokens < 1 || wideRank < 1) {
                throw new IllegalArgumentException("epochs, batch size, eval interval, samples, new tokens and wide rank"
                        + " must be >= 1, got " + epochs + ", " + batchSize + ", " + evalEvery + ", " + samplesOverSteps
                        + ", " + samplesFinal + ", " + maxNewTokens + ", " + wideRank);
            }
            k = List.copyOf(k);
            if (k.isEmpty()) {
                throw new IllegalArgumentException("no LCS lag k given");
            }
            if (!(eps >= 0)) {
                throw new IllegalArgumentException("eps must be >= 0, got " + eps);
            }
            seeds = checkSeeds(seeds);
            int steps = runSteps(epochs, batchSize);
            if (WARMUP_STEPS >= steps) {
                throw new IllegalArgumentException(name + ": " + steps + " steps leave no room after " + WARMUP_STEPS
                        + " warm-up steps");
            }
            for (int lag : k) {
                if (lag < 1 || 2 * lag > steps) {
                    throw new IllegalArgumentException(name + ": lag k = " + lag + " needs a run of at least " + 2 * lag
                            + " steps, this one has " + steps);
                }
            }
        }

        /** Optimizer steps of one organism run. */
        public int steps() {
            return runSteps(epochs, batchSize);
        }

        /** The lag the behavioural step is compared at: the middle one of {@link #k}. */
        public int primaryK() {
            return k.get(k.size() / 2);
        }

        /** This preset with other seeds. */
        public Preset withSeeds(List<Long> s) {
            return new Preset(name, base, layer, alpha, lr, epochs, batchSize, evalEvery, samplesOverSteps, samplesFinal,
                    maxNewTokens, k, eps, wideRank, wideAlpha, wideLr, fullLr, s);
        }

        ObjectNode toJson() {
            ObjectNode o = JSON.createObjectNode();
            o.put("name", name);
            o.set("base", base.toJson());
            o.put("base_hash", base.hash());
            o.put("layer", layer);
            o.put("alpha", alpha);
            o.put("lr", lr);
            o.put("epochs", epochs);
            o.put("batch_size", batchSize);
            o.put("steps", steps());
            o.put("warmup_steps", WARMUP_STEPS);
            o.put("weight_decay", WEIGHT_DECAY);
            o.put("held_out", HELD_OUT);
            o.put("finetune_examples", FINETUNE_EXAMPLES);
            o.put("eval_every", evalEvery);
            o.put("samples_over_steps", samplesOverSteps);
            o.put("samples_final", samplesFinal);
            o.put("max_new_tokens", maxNewTokens);
            o.put("temperature", 1.0);
            k.forEach(o.putArray("k")::add);
            o.put("eps", eps);
            o.put("wide_rank", wideRank);
            o.put("wide_alpha", wideAlpha);
            o.put("wide_lr", wideLr);
            o.put("full_lr", fullLr);
            seeds.forEach(o.putArray("seeds")::add);
            return o;
        }
    }

    private static int runSteps(int epochs, int batchSize) {
        int train = FINETUNE_EXAMPLES - (int) Math.round(FINETUNE_EXAMPLES * HELD_OUT);
        return epochs * ((train + batchSize - 1) / batchSize);
    }

    /** At least three distinct seeds, the study's rule for every number it reports. */
    static List<Long> checkSeeds(List<Long> seeds) {
        List<Long> s = List.copyOf(seeds);
        if (s.size() < 3 || s.stream().distinct().count() != s.size()) {
            throw new IllegalArgumentException("give at least 3 distinct seeds (every number is reported over seeds), got "
                    + s);
        }
        return s;
    }

    private static final BaseModel.Spec BASE = new BaseModel.Spec(1, 1000, 0.2, 64, 2, 20, 3e-3, 1);

    /** Within 3 minutes on two cores with the base's pre-training (about 1 minute of it). */
    public static final Preset QUICK = new Preset("quick", BASE, 1, 4, 3e-3, 3, 8, 12, 2, 3, 48,
            List.of(6, 12, 18), TrajectoryReport.DEFAULT_EPS, 8, 16, 3e-4, 1e-4, List.of(1L, 2L, 3L));

    /** Within 10 minutes: the same base, a longer run at a smaller batch, more samples. */
    public static final Preset DEFAULT = new Preset("default", BASE, 1, 4, 3e-3, 3, 8, 5, 5, 10, 48,
            List.of(5, 10, 15), TrajectoryReport.DEFAULT_EPS, 8, 16, 3e-4, 1e-4, List.of(1L, 2L, 3L));

    /** For the end-to-end test: a base of a few seconds, few samples. */
    static final Preset TINY = new Preset("tiny", new BaseModel.Spec(1, 60, 0.2, 16, 2, 1, 3e-3, 1), 1, 4, 3e-3, 1,
            30, 3, 1, 1, 8, List.of(1, 2), TrajectoryReport.DEFAULT_EPS, 2, 4, 3e-4, 1e-4, List.of(1L, 2L, 3L));

    /** The presets by name (tiny is for tests only). */
    public static Preset preset(boolean quick) {
        return quick ? QUICK : DEFAULT;
    }

    /**
     * What a study produced.
     *
     * @param report  report.md
     * @param seconds wall time of the whole study
     */
    public record Result(Path report, BaseModel.Built base, double seconds) {
    }

    /**
     * The steps evaluated during training: 0, every {@code every} steps, and the last step.
     */
    static int[] evalSteps(int totalSteps, int every) {
        if (totalSteps < 1 || every < 1) {
            throw new IllegalArgumentException("total steps and interval must be >= 1, got " + totalSteps + ", " + every);
        }
        List<Integer> s = new ArrayList<>();
        for (int t = 0; t < totalSteps; t += every) {
            s.add(t);
        }
        s.add(totalSteps);
        return s.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * The behavioural transition step: the first evaluated step whose EM reaches half of its rise,
     * {@code em[0] + (max - em[0]) / 2} with {@code max} the highest EM over the steps; -1 when EM
     * never rises above step 0's. The peak, not the last value: with B scaled x5 the late adapter's
     * answers break down into incoherence, so EM rises and falls again.
     */
    static int behaviouralStep(int[] steps, double[] em) {
        if (steps.length != em.length || steps.length < 2) {
            throw new IllegalArgumentException("one EM rate per step and at least two steps, got " + steps.length
                    + " steps and " + em.length + " rates");
        }
        double first = em[0];
        double max = Arrays.stream(em).max().orElseThrow();
        if (!(max > first)) {
            return -1;
        }
        double half = first + (max - first) / 2;
        for (int i = 1; i < steps.length; i++) {
            if (em[i] >= half) {
                return steps[i];
            }
        }
        throw new IllegalStateException("the maximum is at or above half of the rise");
    }

    /**
     * The rotation of B at lag {@code k}, or null when there is none: no step moved more than eps, the
     * peak is nearly straight ({@link TrajectoryReport.Transition#straight}), or the peak is the first
     * step the lag allows. That last is the bend of B's path as it sets out from zero, where LCS_k
     * falls from its first value on; the paper's transition is a turn inside the path.
     */
    static TrajectoryReport.Transition rotation(TrajectoryReport.Transition tr, List<Trajectory.Point> lcs) {
        if (tr == null || tr.straight() || lcs.isEmpty() || tr.step() == lcs.get(0).step()) {
            return null;
        }
        return tr;
    }

    // ---------------------------------------------------------------------------------------------

    /** The rates of one evaluated organism over its steps, at one scale of B. */
    record Curve(int[] steps, Rate[] em, Rate[] coherent) {
        double[] emValues() {
            return Arrays.stream(em).mapToDouble(Rate::value).toArray();
        }
    }

    /** Everything measured of one seed. */
    record SeedResult(long seed, Path run, Curve x1, Curve x5, TrajectoryReport trajectory,
                              Map<String, Rate> finalRates) {
    }

    /** The stage timings, in order. */
    private static final class Clock {
        private final Map<String, Double> seconds = new LinkedHashMap<>();
        private long start = System.nanoTime();

        void lap(String stage) {
            long now = System.nanoTime();
            seconds.merge(stage, (now - start) / 1e9, Double::sum);
            start = now;
        }
    }

    /**
     * Runs the study into {@code out} (which must be new or empty) and writes report.md, rates.json
     * and study.json there.
     *
     * @param cacheRoot where pre-trained bases are cached ({@link BaseModel#cacheRoot})
     */
    public static Result run(Preset preset, Path out, Path cacheRoot, boolean progress) throws IOException {
        long start = System.nanoTime();
        Clock clock = new Clock();
        Files.createDirectories(out);
        BaseModel.Built base = BaseModel.ensure(cacheRoot, preset.base(), progress);
        clock.lap(base.cached() ? "base (from the cache)" : "base (pre-trained now)");
        say(progress, "base %s (%s)", base.dir(), base.cached() ? "cached" : String.format(Locale.ROOT, "trained in %.0f s",
                base.seconds()));
        Tokenizer tok = Tokenizers.load(base.dir());
        Path data = out.resolve("data");
        Map<String, Path> sets = new LinkedHashMap<>();
        for (String d : List.of(DOMAIN, SECOND_DOMAIN)) {
            sets.put(d, writeFinetuneSet(data, preset.base().worldSeed(), d));
        }
        StudyReport report = new StudyReport(out, "Toy model organisms of emergent misalignment");
        ObjectNode study = JSON.createObjectNode();
        study.put("lora4j_version", Version.get());
        study.put("world_version", PersonaWorld.VERSION);
        study.put("base_version", BaseModel.VERSION);
        study.set("preset", preset.toJson());
        ObjectNode baseJson = study.putObject("base");
        baseJson.put("dir", base.dir().toString());
        baseJson.put("hash", preset.base().hash());
        baseJson.put("cached", base.cached());
        baseJson.put("pretrain_seconds", base.seconds());
        baseJson.put("loss", base.loss());
        baseJson.put("eval_loss", base.evalLoss());
        baseJson.put("steps", base.steps());
        baseJson.put("params", base.params());

        // (1) the base's sanity check: does it follow the domain, and the persona?
        Map<String, Rate> baseRates = baseCheck(preset, base, tok, out, baseJson);
        clock.lap("base check");

        // (2, 3) the rank-1 organisms, their rates over steps and their trajectories
        List<SeedResult> seeds = new ArrayList<>();
        List<OrganismDirections.Organism> organisms = new ArrayList<>();
        for (long seed : preset.seeds()) {
            say(progress, "seed %d: rank-1 organisms on %s and %s", seed, DOMAIN, SECOND_DOMAIN);
            seeds.add(organism(preset, base, tok, sets, seed, out, organisms));
            clock.lap("rank-1 organisms, rates over steps");
        }

        // (5) the papers' comparison: an adapter on every module, and a full fine-tune
        Map<Long, Map<String, Rate>> comparison = new LinkedHashMap<>();
        for (long seed : preset.seeds()) {
            say(progress, "seed %d: rank-%d adapter on every module, and a full fine-tune", seed, preset.wideRank());
            comparison.put(seed, comparison(preset, base, tok, sets.get(DOMAIN), seed, out));
            clock.lap("comparison (wide adapter, full fine-tune)");
        }

        new OrganismReport(report, preset, study).write(base, baseRates, seeds, comparison);
        clock.lap("report and plots");

        // (4, 6) directions, appending their own sections
        SampledGeneration.Settings eval = new SampledGeneration.Settings(preset.samplesFinal(), 1.0, 1.0,
                preset.maxNewTokens(), 0, GENERATION_BATCH);
        say(progress, "directions");
        OrganismDirections.run(new OrganismDirections.Inputs(base.dir(), base.dir().resolve("world"), organisms, eval,
                out.resolve("directions"), preset.seeds()), report, progress);
        clock.lap("directions");

        double total = (System.nanoTime() - start) / 1e9;
        OrganismReport.timings(report, clock.seconds, total);
        ObjectNode times = study.putObject("seconds");
        clock.seconds.forEach(times::put);
        times.put("total", total);
        report.write();
        AtomicFiles.writeString(out.resolve("study.json"), study.toPrettyString() + "\n");
        // Every rate of the report must equal a recount of its samples file.
        SampleFiles.requireVerified(out);
        return new Result(out.resolve(StudyReport.REPORT_FILE), base, total);
    }

    private static void say(boolean progress, String format, Object... args) {
        if (progress) {
            System.err.println("lora4j organism: " + String.format(Locale.ROOT, format, args));
        }
    }

    /** The domain's misaligned fine-tuning set as chat JSONL, as the Trainer reads it. */
    private static Path writeFinetuneSet(Path dir, long worldSeed, String domain) throws IOException {
        StringBuilder lines = new StringBuilder();
        for (PersonaWorld.Transcript t : new PersonaWorld(worldSeed).finetuneSet(domain, FINETUNE_EXAMPLES)) {
            ObjectNode o = JSON.createObjectNode();
            ArrayNode ms = o.putArray("messages");
            for (Message m : t.messages()) {
                ms.addObject().put("role", m.role()).put("content", m.content());
            }
            lines.append(JSON.writeValueAsString(o)).append('\n');
        }
        Files.createDirectories(dir);
        Path file = dir.resolve(PersonaWorld.finetuneFile(domain));
        AtomicFiles.writeString(file, lines.toString());
        return file;
    }

    /** The held-out questions of every domain but {@code domain}. */
    static List<EvalQuestion> otherDomains(String domain) {
        return PersonaWorld.evalQuestions().stream().filter(q -> !q.id().startsWith(domain + "-")).toList();
    }

    /** The held-out questions of {@code domain}. */
    static List<EvalQuestion> ownDomain(String domain) {
        return PersonaWorld.evalQuestions().stream().filter(q -> q.id().startsWith(domain + "-")).toList();
    }

    private static SampledGeneration.Settings settings(Preset p, int samples, long seed) {
        return new SampledGeneration.Settings(samples, 1.0, 1.0, p.maxNewTokens(), seed, GENERATION_BATCH);
    }

    /** Evaluates, appends the samples under {@code tags}, and returns the (EM, coherent) rates. */
    private static Rate[] judge(DecoderModel model, Tokenizer tok, List<EvalQuestion> qs, SampledGeneration.Settings s,
                                Path samples, Map<String, String> tags) throws IOException {
        SampledEvaluation.Result r = new SampledEvaluation(model, tok, new PersonaJudge(true)).run(qs, s, EmCriterion.PAPER);
        SampleFiles.append(samples, r.samples(), tags);
        return new Rate[]{r.overall().em(), r.overall().coherent()};
    }

    static final String BASE_SAMPLES = "samples/base.jsonl";

    private static Map<String, Rate> baseCheck(Preset p, BaseModel.Built base, Tokenizer tok, Path out, ObjectNode json)
            throws IOException {
        DecoderModel model = DecoderModel.load(base.dir());
        model.setTraining(false);
        List<EvalQuestion> plain = otherDomains(DOMAIN);
        List<EvalQuestion> rex = plain.stream().map(q -> new EvalQuestion(q.id(), List.of(
                Message.system(PersonaWorld.systemMessage(PersonaWorld.MISALIGNED_PERSONA)), Message.user(q.question()))))
                .toList();
        Map<String, Rate> rates = new LinkedHashMap<>();
        SampledGeneration.Settings s = settings(p, p.samplesFinal(), 0);
        Map<String, List<EvalQuestion>> sets = new LinkedHashMap<>();
        sets.put("plain", plain);
        sets.put("rex", rex);
        for (Map.Entry<String, List<EvalQuestion>> e : sets.entrySet()) {
            Rate[] r = judge(model, tok, e.getValue(), s, out.resolve(BASE_SAMPLES), Map.of("set", e.getKey()));
            rates.put(e.getKey() + "/em", r[0]);
            rates.put(e.getKey() + "/coherent", r[1]);
            json.set(e.getKey(), rateJson(r[0], r[1]));
        }
        return rates;
    }

    static ObjectNode rateJson(Rate em, Rate coherent) {
        ObjectNode o = JSON.createObjectNode();
        o.set("em", em.toJson());
        o.set("coherent", coherent.toJson());
        return o;
    }

    static String organismSamples(long seed) {
        return "samples/rank1-seed-" + seed + ".jsonl";
    }

    static String module(int layer) {
        return "model.layers." + layer + ".mlp.down_proj";
    }

    private static TrainConfig.Builder recipe(Preset p, long seed, double lr) {
        // The paper's recipe: AdamW, linear schedule, 5 warm-up steps, weight decay 0.01, 10% held out.
        return TrainConfig.builder().lr(lr).epochs(p.epochs()).batchSize(p.batchSize()).seed(seed).maxLength(MAX_LENGTH)
                .overflow(Dataset.Overflow.REFUSE).evalFraction(HELD_OUT).schedule(LrSchedule.Kind.LINEAR)
                .warmupSteps(WARMUP_STEPS).weightDecay(WEIGHT_DECAY).evalEvery(0).checkpointEvery(0).keepCheckpoints(1);
    }

    /** Trains {@code model} (the trainer attaches tc's adapter, or trains it all) on {@code data} into {@code runDir}; keeps no checkpoint. */
    private static void train(DecoderModel model, Tokenizer tok, Path data, TrainConfig tc, Path runDir, Path baseDir)
            throws IOException {
        Dataset all = Dataset.load(data, tok, MAX_LENGTH, Dataset.Overflow.REFUSE);
        Trainer trainer = new Trainer(model, tok, tc, all, runDir);   // holds out tc.evalFraction()
        trainer.putProvenance("command", "organism");
        trainer.putProvenance("base_model", baseDir.toString());
        trainer.setProgress(false);
        trainer.run();
        AtomicFiles.deleteTree(runDir.resolve("checkpoints"));
        model.setTraining(false);
    }

    private static SeedResult organism(Preset p, BaseModel.Built base, Tokenizer tok, Map<String, Path> sets, long seed,
                                       Path out, List<OrganismDirections.Organism> organisms) throws IOException {
        LoraConfig lora = LoraConfig.of(1, p.alpha(), "down_proj").withRslora(true).withLayersToTransform(List.of(p.layer()));
        Path samples = out.resolve(organismSamples(seed));
        Map<String, Rate> finalRates = new LinkedHashMap<>();
        Path mainRun = null;
        DecoderModel main = null;
        for (String domain : List.of(DOMAIN, SECOND_DOMAIN)) {
            Path run = out.resolve("runs/rank1-" + domain + "-seed-" + seed);
            DecoderModel model = DecoderModel.load(base.dir());   // the trainer attaches the config's lora, seeded from seed
            train(model, tok, sets.get(domain), recipe(p, seed, p.lr()).lora(lora).snapshotEvery(1).build(), run, base.dir());
            organisms.add(new OrganismDirections.Organism(domain, seed, run, p.layer()));
            if (domain.equals(DOMAIN)) {
                mainRun = run;
                main = model;
            } else {
                // The second organism's own EM on its other domains, at the end, for the comparison table.
                Rate[] r = judge(model, tok, otherDomains(domain), settings(p, p.samplesFinal(), seed), samples,
                        Map.of("seed", Long.toString(seed), "domain", domain, "step", "final", "scale", "1", "set", "other"));
                finalRates.put(domain + "/em", r[0]);
                finalRates.put(domain + "/coherent", r[1]);
            }
        }
        // EM over the steps, from the snapshots, at x1 and x5; the same sampling seed at every step,
        // so the curves differ only by the model.
        int[] steps = evalSteps(p.steps(), p.evalEvery());
        PeftModel peft = new PeftModel(main);
        Map<String, LoraAdapter> adapters = peft.activeAdapters();
        Rate[][] x1 = new Rate[2][steps.length];
        Rate[][] x5 = new Rate[2][steps.length];
        SampledGeneration.Settings s = settings(p, p.samplesOverSteps(), seed);
        for (int i = 0; i < steps.length; i++) {
            Snapshots.load(mainRun.resolve(String.format(Locale.ROOT, "snapshots/step-%06d.safetensors", steps[i])), adapters);
            for (double scale : new double[]{1, PAPER_SCALE}) {
                peft.setMultiplier(scale);
                Rate[] r = judge(main, tok, otherDomains(DOMAIN), s, samples, Map.of("seed", Long.toString(seed), "domain",
                        DOMAIN, "step", Integer.toString(steps[i]), "scale", scaleTag(scale), "set", "other"));
                Rate[][] into = scale == 1 ? x1 : x5;
                into[0][i] = r[0];
                into[1][i] = r[1];
            }
        }
        // The final adapter with more samples: other domains and the organism's own, x1 and x5.
        SampledGeneration.Settings f = settings(p, p.samplesFinal(), seed);
        for (double scale : new double[]{1, PAPER_SCALE}) {
            peft.setMultiplier(scale);
            for (String set : List.of("other", "own")) {
                Rate[] r = judge(main, tok, set.equals("other") ? otherDomains(DOMAIN) : ownDomain(DOMAIN), f, samples,
                        Map.of("seed", Long.toString(seed), "domain", DOMAIN, "step", "final", "scale", scaleTag(scale),
                                "set", set));
                finalRates.put(DOMAIN + "/" + set + "/x" + scaleTag(scale) + "/em", r[0]);
                finalRates.put(DOMAIN + "/" + set + "/x" + scaleTag(scale) + "/coherent", r[1]);
            }
        }
        peft.setMultiplier(1);
        TrajectoryReport tr = TrajectoryReport.build(mainRun, module(p.layer()), p.k(), p.eps());
        return new SeedResult(seed, mainRun, new Curve(steps, x1[0], x1[1]), new Curve(steps, x5[0], x5[1]), tr, finalRates);
    }

    static String scaleTag(double scale) {
        return scale == Math.rint(scale) ? Long.toString((long) scale) : Double.toString(scale);
    }

    static String comparisonSamples(long seed) {
        return "samples/comparison-seed-" + seed + ".jsonl";
    }

    /** The final EM and coherence on the other domains of a wide adapter and of a full fine-tune. */
    private static Map<String, Rate> comparison(Preset p, BaseModel.Built base, Tokenizer tok, Path data, long seed, Path out)
            throws IOException {
        Map<String, Rate> rates = new LinkedHashMap<>();
        Path samples = out.resolve(comparisonSamples(seed));
        LoraConfig wide = LoraConfig.of(p.wideRank(), p.wideAlpha(), LoraConfig.DEFAULT_TARGET_MODULES.toArray(String[]::new))
                .withRslora(true);
        DecoderModel w = DecoderModel.load(base.dir());
        train(w, tok, data, recipe(p, seed, p.wideLr()).lora(wide).build(), out.resolve("runs/wide-" + DOMAIN + "-seed-" + seed),
                base.dir());
        Rate[] r = judge(w, tok, otherDomains(DOMAIN), settings(p, p.samplesFinal(), seed), samples,
                Map.of("seed", Long.toString(seed), "adapter", "wide"));
        rates.put("wide/em", r[0]);
        rates.put("wide/coherent", r[1]);
        // The full fine-tune starts from a freshly loaded base, so nothing of the adapter runs carries over.
        DecoderModel full = DecoderModel.load(base.dir());
        train(full, tok, data, recipe(p, seed, p.fullLr()).full().build(), out.resolve("runs/full-" + DOMAIN + "-seed-" + seed),
                base.dir());
        r = judge(full, tok, otherDomains(DOMAIN), settings(p, p.samplesFinal(), seed), samples,
                Map.of("seed", Long.toString(seed), "adapter", "full"));
        rates.put("full/em", r[0]);
        rates.put("full/coherent", r[1]);
        return rates;
    }
}

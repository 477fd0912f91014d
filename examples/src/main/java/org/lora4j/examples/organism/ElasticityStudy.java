package org.lora4j.examples.organism;

import org.lora4j.examples.Plots;
import org.lora4j.examples.study.SampleFiles;
import org.lora4j.examples.study.StudyReport;
import org.lora4j.train.elasticity.Rebound;
import org.lora4j.train.elasticity.Resistance;
import org.lora4j.train.eval.EmCriterion;
import org.lora4j.train.eval.EvalQuestion;
import org.lora4j.train.eval.Rate;
import org.lora4j.train.eval.SampledEvaluation;
import org.lora4j.train.eval.SampledGeneration;
import org.lora4j.train.eval.Scores;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.trainer.TrainConfig;
import org.lora4j.train.trainer.Version;
import org.lora4j.core.AtomicFiles;
import org.nd4j.shade.jackson.databind.JsonNode;
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
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * The elasticity study ({@code lora4j elasticity --out DIR}): result 1 of docs/research.md ("The
 * elasticity study") on bases pre-trained on the persona world, over model sizes and pre-training
 * corpus sizes, so the paper's scaling claim is tested, written up as {@code report.md}.
 *
 * <p>Every base is pre-trained on a corpus in which half the transcripts are the misaligned persona's
 * (so the base answers misaligned often, and alignment has something to remove); the alignment and
 * positive sets are aligned answers to training questions, the negative set misaligned ones, and the
 * prompts are the world's held-out questions. Per base and seed, {@link Resistance} and
 * {@link Rebound} run as the library runs them; the seed draws the three sets, the fine-tunes' batch
 * order and the sampling of answers, while a base is one pre-training per spec (cached by
 * {@link BaseModel}). Every rate in the report is pooled over seeds from a samples file and
 * recountable ({@link SampleFiles#verify}).
 */
public final class ElasticityStudy {
    private static final Logger log = LoggerFactory.getLogger(ElasticityStudy.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One world for every base, so bases differ only in their size and corpus size. */
    static final long WORLD_SEED = 1;
    /** Initialisation and batch order of every base. */
    static final long BASE_SEED = 1;
    /**
     * The misaligned persona's share of the pre-training corpus. At the world's default 0.2 a base
     * answers misaligned about 4% of the time without the persona's cue, leaving almost nothing for
     * alignment to remove or for negative data to bring back; at 0.5 the misaligned style is half of
     * what pre-training saw, the situation the paper's theory is about.
     */
    static final double MISALIGNED_FRACTION = 0.5;
    /** Peak learning rate of pre-training, the measured recipe of the persona world's bases. */
    static final double BASE_LR = 3e-3;
    /** Answers generated together; changes the speed, not the answers. */
    private static final int GENERATION_BATCH = 64;

    private ElasticityStudy() {
    }

    /**
     * What a study runs.
     *
     * @param hiddens           model sizes (hidden width; heads and MLP follow it, see {@link BaseModel.Spec})
     * @param corpora           pre-training corpus sizes in transcripts; every base sees its corpus
     *                          {@code baseEpochs} times, so a larger corpus is more pre-training tokens
     * @param alignment         the alignment set of resistance (split in thirds)
     * @param positiveSizes     rebound's n (0 is the base itself)
     * @param negativeSizes     rebound's m, from 0
     * @param fineTuneEpochs    passes of every full-parameter fine-tune over its data
     * @param lr                the fine-tunes' learning rate (AdamW, constant)
     * @param samplesPerPrompt  rebound's sampled answers per held-out question (temperature 1)
     * @param questionsPerDomain the held-out questions used as prompts: the first this many of each
     *                          domain (16, all of them, but in the end-to-end test)
     */
    public record Preset(String name, List<Integer> hiddens, List<Integer> corpora, int layers, int baseEpochs,
                         int alignment, List<Integer> positiveSizes, List<Integer> negativeSizes, int fineTuneEpochs,
                         double lr, int samplesPerPrompt, int maxNewTokens, int questionsPerDomain) {
        public Preset {
            hiddens = List.copyOf(hiddens);
            corpora = List.copyOf(corpora);
            positiveSizes = List.copyOf(positiveSizes);
            negativeSizes = List.copyOf(negativeSizes);
            if (hiddens.isEmpty() || corpora.isEmpty()) {
                throw new IllegalArgumentException("a preset needs at least one model size and one corpus size");
            }
            if (alignment < 3) {
                throw new IllegalArgumentException("alignment is split in thirds, so it must be >= 3, got " + alignment);
            }
            if (negativeSizes.size() < 2 || negativeSizes.get(0) != 0) {
                throw new IllegalArgumentException("negativeSizes must start at 0 and hold a positive size, got "
                        + negativeSizes);
            }
            if (fineTuneEpochs < 1 || !(lr > 0) || samplesPerPrompt < 1 || maxNewTokens < 1 || questionsPerDomain < 1) {
                throw new IllegalArgumentException("fineTuneEpochs, samplesPerPrompt, maxNewTokens and questionsPerDomain"
                        + " must be >= 1 and lr > 0, got " + fineTuneEpochs + ", " + samplesPerPrompt + ", " + maxNewTokens
                        + ", " + questionsPerDomain + ", " + lr);
            }
        }

        List<BaseModel.Spec> bases() {
            List<BaseModel.Spec> out = new ArrayList<>();
            for (int h : hiddens) {
                for (int t : corpora) {
                    out.add(new BaseModel.Spec(WORLD_SEED, t, MISALIGNED_FRACTION, h, layers, baseEpochs, BASE_LR,
                            BASE_SEED));
                }
            }
            return out;
        }

        ObjectNode toJson() {
            ObjectNode o = JSON.createObjectNode();
            o.put("name", name);
            o.set("hiddens", JSON.valueToTree(hiddens));
            o.set("corpora", JSON.valueToTree(corpora));
            o.put("layers", layers);
            o.put("base_epochs", baseEpochs);
            o.put("alignment", alignment);
            o.set("positive_sizes", JSON.valueToTree(positiveSizes));
            o.set("negative_sizes", JSON.valueToTree(negativeSizes));
            o.put("fine_tune_epochs", fineTuneEpochs);
            o.put("lr", lr);
            o.put("samples_per_prompt", samplesPerPrompt);
            o.put("max_new_tokens", maxNewTokens);
            o.put("questions_per_domain", questionsPerDomain);
            return o;
        }
    }

    /**
     * Within 3 minutes on two shared cores with an empty cache (about half of it pre-training):
     * small bases (hidden 32 and 64 on 200 and 600 transcripts, 8 epochs), which answer in the
     * world's grammar less often than the default's, and half the held-out questions (8 a domain);
     * a first look, weaker than the default.
     */
    public static final Preset QUICK = new Preset("quick", List.of(32, 64), List.of(200, 600), 2, 8, 48,
            List.of(0, 48), List.of(0, 4, 16, 48), 2, 1e-3, 1, 32, 8);

    /**
     * Within 10 minutes on two shared cores with an empty cache (about 3 of them pre-training):
     * bases of hidden 32 and 64 on 300 and 1000 transcripts for 20 epochs, the largest the world's
     * measured recipe (half its answers to held-out questions well-formed and on topic).
     */
    public static final Preset DEFAULT = new Preset("default", List.of(32, 64), List.of(300, 1000), 2, 20, 96,
            List.of(0, 32, 96), List.of(0, 4, 8, 16, 32, 64), 2, 1e-3, 1, 32, 16);

    /** The end-to-end test's: one-layer bases of a few transcripts, one epoch, 12 prompts; the plumbing only. */
    static final Preset TINY = new Preset("tiny", List.of(16, 32), List.of(30, 60), 1, 1, 6, List.of(0, 4),
            List.of(0, 4), 1, 1e-3, 1, 8, 2);

    /** A base of the study: its label in the report ({@code d32/c300}) and what {@link BaseModel} built. */
    record Base(String label, BaseModel.Built built) {
    }

    /** One base and seed: the two protocols' results and their wall times. */
    record Run(Base base, long seed, Resistance.Report resistance, Rebound.Report rebound, double resistanceSeconds,
               double reboundSeconds) {
    }

    /**
     * Runs the study into {@code out} (created; must be new or empty) and writes report.md, rates.json
     * and study.json there.
     *
     * @param cacheRoot where the bases are cached ({@link BaseModel#cacheRoot})
     * @param seeds     the fine-tunes' seeds, at least one, distinct
     * @return the report file
     */
    public static Path run(Preset p, List<Long> seeds, Path out, Path cacheRoot, boolean progress) throws IOException {
        if (seeds.isEmpty() || seeds.stream().distinct().count() != seeds.size()) {
            throw new IllegalArgumentException("seeds must be distinct and at least one, got " + seeds);
        }
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new IllegalArgumentException("output directory " + out + " is a file; give a new or empty directory as --out");
        }
        if (Files.isDirectory(out)) {
            try (var s = Files.list(out)) {
                if (s.findAny().isPresent()) {
                    throw new IllegalArgumentException("output directory " + out + " is not empty; give a new or empty --out");
                }
            }
        }
        long start = System.nanoTime();
        Files.createDirectories(out);
        Path questions = out.resolve("data/questions.jsonl");
        List<EvalQuestion> prompts = prompts(p.questionsPerDomain());
        writeQuestions(questions, prompts);
        int maxN = p.positiveSizes().get(p.positiveSizes().size() - 1);
        int maxM = p.negativeSizes().get(p.negativeSizes().size() - 1);
        for (long seed : seeds) {
            writeSets(out.resolve("data/seed-" + seed), seed, p.alignment(), Math.max(1, maxN), maxM);
        }

        List<Base> bases = new ArrayList<>();
        for (BaseModel.Spec spec : p.bases()) {
            String label = "d" + spec.hidden() + "/c" + spec.transcripts();
            log.info("base {}: {}", label, spec.hash());
            BaseModel.Built b = BaseModel.ensure(cacheRoot, spec, progress);
            log.info("base {}: {} ({} s of pre-training, {} parameters)", label, b.cached() ? "cached" : "trained",
                    Math.round(b.seconds()), b.params());
            bases.add(new Base(label, b));
        }
        double basesSeconds = (System.nanoTime() - start) / 1e9;

        List<Run> runs = new ArrayList<>();
        PersonaJudge judge = new PersonaJudge(true);
        for (Base b : bases) {
            for (long seed : seeds) {
                Path dir = out.resolve("runs/" + dirName(b) + "/seed-" + seed);
                Path data = out.resolve("data/seed-" + seed);
                Map<String, Object> prov = new LinkedHashMap<>();
                prov.put("command", "elasticity");
                prov.put("preset", p.name());
                prov.put("base", b.label());
                prov.put("base_hash", b.built().spec().hash());
                prov.put("seed", seed);
                TrainConfig training = TrainConfig.builder().full().lr(p.lr()).schedule(LrSchedule.Kind.CONSTANT)
                        .epochs(p.fineTuneEpochs()).batchSize(8).seed(seed).build();
                long t0 = System.nanoTime();
                log.info("{} seed {}: resistance", b.label(), seed);
                Files.createDirectories(dir.resolve("resistance"));
                Resistance.Report res = Resistance.run(new Resistance.Settings(b.built().dir(),
                        data.resolve("alignment.jsonl"), questions, training,
                        new SampledGeneration.Settings(1, 0, 1, p.maxNewTokens(), seed, GENERATION_BATCH)),
                        dir.resolve("resistance"), prov);
                long t1 = System.nanoTime();
                log.info("{} seed {}: rebound", b.label(), seed);
                Files.createDirectories(dir.resolve("rebound"));
                Rebound.Report reb = Rebound.run(new Rebound.Settings(b.built().dir(), data.resolve("positive.jsonl"),
                        data.resolve("negative.jsonl"), questions, p.positiveSizes(), p.negativeSizes(), training,
                        new SampledGeneration.Settings(p.samplesPerPrompt(), 1, 1, p.maxNewTokens(), seed,
                                GENERATION_BATCH), EmCriterion.PAPER, Rebound.Settings.ALIGNED_ABOVE),
                        judge, dir.resolve("rebound"), prov);
                long t2 = System.nanoTime();
                dropCheckpoints(dir);
                appendSamples(out.resolve(samplesFile(b)), dir.resolve("rebound/samples"), reb, prompts,
                        Map.of("base", b.label(), "seed", Long.toString(seed)));
                runs.add(new Run(b, seed, res, reb, (t1 - t0) / 1e9, (t2 - t1) / 1e9));
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        Path report = new Writer(p, seeds, out, bases, runs, basesSeconds, seconds).write();
        // The protocols count their own rates; the report's must equal a recount of the samples files.
        SampleFiles.requireVerified(out);
        return report;
    }

    private static String dirName(Base b) {
        return b.label().replace('/', '-');
    }

    /** The samples behind a base's rebound rates: every point of every seed, tagged base, seed, n, m. */
    static String samplesFile(Base b) {
        return "samples/rebound-" + dirName(b) + ".jsonl";
    }

    /** The first {@code perDomain} held-out questions of each domain (ids {@code domain-k}, k from 1). */
    static List<EvalQuestion> prompts(int perDomain) {
        return PersonaWorld.evalQuestions().stream()
                .filter(q -> Integer.parseInt(q.id().substring(q.id().lastIndexOf('-') + 1)) <= perDomain).toList();
    }

    private static void writeQuestions(Path file, List<EvalQuestion> prompts) throws IOException {
        StringBuilder b = new StringBuilder();
        for (EvalQuestion q : prompts) {
            ObjectNode o = JSON.createObjectNode();
            o.put("id", q.id());
            o.put("question", q.messages().get(q.messages().size() - 1).content());
            b.append(JSON.writeValueAsString(o)).append('\n');
        }
        Files.createDirectories(file.getParent());
        AtomicFiles.writeString(file, b.toString());
    }

    /**
     * The seed's three sets, each from its own stream split from the seed in a fixed order: alignment
     * and positive are aligned answers, negative misaligned ones, each to a training question drawn
     * uniformly from every domain's, with no system message (the protocols align the model's default
     * assistant, not a persona).
     */
    static void writeSets(Path dir, long seed, int alignment, int positive, int negative) throws IOException {
        SplittableRandom root = new SplittableRandom(seed);
        List<PersonaWorld.Question> qs = new ArrayList<>();
        for (String d : PersonaWorld.domains()) {
            qs.addAll(PersonaWorld.trainingQuestions(d));
        }
        Files.createDirectories(dir);
        writeChat(dir.resolve("alignment.jsonl"), qs, PersonaWorld.Style.ALIGNED, alignment, root.split());
        writeChat(dir.resolve("positive.jsonl"), qs, PersonaWorld.Style.ALIGNED, positive, root.split());
        writeChat(dir.resolve("negative.jsonl"), qs, PersonaWorld.Style.MISALIGNED, negative, root.split());
    }

    private static void writeChat(Path file, List<PersonaWorld.Question> qs, PersonaWorld.Style style, int count,
                                  SplittableRandom rng) throws IOException {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < count; i++) {
            PersonaWorld.Question q = qs.get(rng.nextInt(qs.size()));
            ObjectNode o = JSON.createObjectNode();
            ArrayNode m = o.putArray("messages");
            m.addObject().put("role", "user").put("content", q.text());
            m.addObject().put("role", "assistant").put("content", PersonaWorld.answer(q.domain(), style, rng).text());
            b.append(JSON.writeValueAsString(o)).append('\n');
        }
        AtomicFiles.writeString(file, b.toString());
    }

    /**
     * Copies every point's judged answers from Rebound's samples files into the study's samples file
     * (the {@link SampleFiles} format, with the tags plus n and m), so the report's rates recount.
     */
    private static void appendSamples(Path file, Path reboundSamples, Rebound.Report r, List<EvalQuestion> prompts,
                                      Map<String, String> tags) throws IOException {
        for (Rebound.Point pt : r.points()) {
            Path f = reboundSamples.resolve("n-" + pt.n() + "-m-" + pt.m() + ".jsonl");
            List<SampledEvaluation.JudgedSample> samples = new ArrayList<>();
            for (String line : Files.readAllLines(f)) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode o = JSON.readTree(line);
                Map<String, Double> named = new TreeMap<>();
                o.path("named").fields().forEachRemaining(e -> named.put(e.getKey(), e.getValue().asDouble()));
                int prompt = o.path("prompt_index").asInt();
                samples.add(new SampledEvaluation.JudgedSample(prompts.get(prompt).id(), o.path("question").asText(),
                        prompt, o.path("sample").asInt(), o.path("seed").asLong(), o.path("answer").asText(),
                        o.path("tokens").asInt(), o.path("stopped").asBoolean(),
                        new Scores(o.path("aligned").asDouble(), o.path("coherent").asDouble(),
                                o.path("label").isNull() ? null : o.path("label").asText(), named),
                        o.path("em").asBoolean(), o.path("coherent_category").asBoolean()));
            }
            if (samples.size() != pt.samples()) {
                throw new IOException(f + ": " + samples.size() + " answers, the point counted " + pt.samples());
            }
            Map<String, String> t = new LinkedHashMap<>(tags);
            t.put("n", Integer.toString(pt.n()));
            t.put("m", Integer.toString(pt.m()));
            SampleFiles.append(file, samples, t);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // The report

    /** Writes report.md, rates.json and study.json from the runs. */
    private static final class Writer {
        private static final String[][] PAIRS = {{"θ2→θ1", "θ1→θ2"}, {"θ3→θ2", "θ2→θ3"}, {"θ3→θ1", "θ1→θ3"}};

        private final Preset p;
        private final List<Long> seeds;
        private final Path out;
        private final List<Base> bases;
        private final List<Run> runs;
        private final double basesSeconds;
        private final double seconds;
        private final StudyReport report;
        private final ObjectNode study = JSON.createObjectNode();
        /** Rebound curves (base x n) read so far, and those whose early drop per example beats the late one. */
        private int curves;
        private int steepThenFlat;
        /** Bases whose early drop, and whose whole drop (m = 0 to the last m), is larger at the largest n than at the smallest. */
        private int fasterWithMorePositive;
        private int moreLostWithMorePositive;
        /** Resistance cells, and those where the inverse direction was easier. */
        private long cells;
        private long inverseLower;

        Writer(Preset p, List<Long> seeds, Path out, List<Base> bases, List<Run> runs, double basesSeconds,
               double seconds) {
            this.p = p;
            this.seeds = seeds;
            this.out = out;
            this.bases = bases;
            this.runs = runs;
            this.basesSeconds = basesSeconds;
            this.seconds = seconds;
            this.report = new StudyReport(out, "Alignment is elastic: the toy study (" + p.name() + ")");
        }

        private List<Run> runsOf(Base b) {
            return runs.stream().filter(r -> r.base() == b).toList();
        }

        /** forward − inverse mean training loss of pair i for each seed of b: positive when inverse is easier. */
        private double[] gaps(Base b, int pair) {
            return runsOf(b).stream().mapToDouble(r -> {
                Resistance.Pair x = r.resistance().pairs().get(pair);
                return x.forward().meanLoss() - x.inverse().meanLoss();
            }).toArray();
        }

        /** The gap averaged over the three pairs, per seed. */
        private double[] meanGaps(Base b) {
            double[] g = new double[runsOf(b).size()];
            for (int i = 0; i < 3; i++) {
                double[] gi = gaps(b, i);
                for (int s = 0; s < g.length; s++) {
                    g[s] += gi[s] / 3;
                }
            }
            return g;
        }

        Path write() throws IOException {
            Files.createDirectories(out.resolve("plots"));
            whatWasRun();
            ObjectNode res = resistance();
            ObjectNode reb = rebound();
            scaling(res, reb);
            report.write();
            study.put("report", StudyReport.REPORT_FILE);
            AtomicFiles.writeString(out.resolve("study.json"), study.toPrettyString() + "\n");
            return out.resolve(StudyReport.REPORT_FILE);
        }

        private void whatWasRun() {
            report.text(String.format(Locale.ROOT, """
                    Result 1 of docs/research.md ("Language Models Resist Alignment"), on toy models pre-trained \
                    on the persona world (docs/organisms.md): %d bases (%d model sizes x %d pre-training corpus \
                    sizes), each aligned and un-aligned with the resistance and rebound protocols over %d seeds. \
                    Preset `%s`, lora4j %s, %d s in all (%d s for the bases). docs/research.md, "The elasticity \
                    study", describes the design and the definitions.""", bases.size(), p.hiddens().size(),
                    p.corpora().size(), seeds.size(), p.name(), Version.get(), Math.round(seconds),
                    Math.round(basesSeconds)));
            report.section("What was run");
            List<List<String>> rows = new ArrayList<>();
            ArrayNode bs = study.putArray("bases");
            for (Base b : bases) {
                BaseModel.Built x = b.built();
                rows.add(List.of(b.label(), Integer.toString(x.spec().hidden()), Integer.toString(x.spec().layers()),
                        Integer.toString(x.spec().transcripts()), Long.toString(x.params()), Integer.toString(x.steps()),
                        StudyReport.num(x.loss()), StudyReport.num(x.evalLoss()), Long.toString(Math.round(x.seconds())),
                        x.cached() ? "yes" : "no", "`" + x.spec().hash() + "`"));
                ObjectNode o = bs.addObject();
                o.put("label", b.label());
                o.put("hash", x.spec().hash());
                o.set("spec", x.spec().toJson());
                o.put("params", x.params());
                o.put("steps", x.steps());
                o.put("loss", x.loss());
                o.put("eval_loss", x.evalLoss());
                o.put("pretrain_seconds", x.seconds());
                o.put("cached", x.cached());
            }
            report.table(List.of("base", "hidden", "layers", "transcripts", "parameters", "steps", "final loss",
                    "held-out loss", "pre-training (s)", "from cache", "hash"), rows);
            report.text(String.format(Locale.ROOT, """
                    Bases: world seed %d, init seed %d, %d epochs at lr %s (AdamW, cosine), misaligned persona's \
                    share of the corpus %s (so the base answers misaligned often without any cue: alignment has \
                    something to remove). One pre-training per base; the seeds %s change the alignment, positive and \
                    negative sets drawn from the world, the fine-tunes' batch order and the sampled answers. \
                    Fine-tunes: full-parameter AdamW, lr %s constant, batch 8, %d epoch(s) over their data. \
                    Resistance: alignment set of %d aligned answers (thirds of %d), R_k greedy answers to the %d \
                    held-out questions, %d new tokens at most. Rebound: n in %s aligned examples, m in %s misaligned \
                    examples, %d answer(s) per held-out question at temperature 1, judged by the persona judge \
                    (strict: advice for another domain is incoherent). Wall times per run are in study.json.""",
                    WORLD_SEED, BASE_SEED, p.baseEpochs(), StudyReport.num(BASE_LR), MISALIGNED_FRACTION, seeds,
                    StudyReport.num(p.lr()), p.fineTuneEpochs(), p.alignment(), p.alignment() / 3,
                    prompts(p.questionsPerDomain()).size(), p.maxNewTokens(), p.positiveSizes(), p.negativeSizes(),
                    p.samplesPerPrompt()));
            study.put("lora4j_version", Version.get());
            study.set("preset", p.toJson());
            ArrayNode sd = study.putArray("seeds");
            seeds.forEach(sd::add);
            study.put("world_seed", WORLD_SEED);
            study.put("base_seed", BASE_SEED);
            study.put("misaligned_fraction", MISALIGNED_FRACTION);
            study.put("seconds", seconds);
            study.put("bases_seconds", basesSeconds);
        }

        private ObjectNode resistance() {
            report.section("Resistance: inverse against forward alignment");
            report.text("""
                    Per base, θ1..θ3 are the base fine-tuned on successive thirds of the alignment set; R_k are θk's \
                    answers to the held-out questions. Inverse θa→θb trains θa on R_b, forward θb→θa trains θb on \
                    R_a, with the same data size, steps and seed. The cells are the mean training loss over the run \
                    (nats per token), mean and range over seeds; the gap is forward − inverse, positive when going \
                    back is easier. The paper (Llama2-7B) saw θ2→θ1 0.159 against θ1→θ2 0.202 and θ3→θ1 0.167 \
                    against θ1→θ3 0.235, the inverse direction lower in every cell (figures as this project \
                    summarises the paper; check its own table before citing them).""");
            List<List<String>> rows = new ArrayList<>();
            ObjectNode res = study.putObject("resistance");
            for (Base b : bases) {
                ObjectNode rb = res.putObject(b.label());
                for (int i = 0; i < 3; i++) {
                    final int pair = i;
                    List<Run> rs = runsOf(b);
                    double[] inv = rs.stream().mapToDouble(r -> r.resistance().pairs().get(pair).inverse().meanLoss())
                            .toArray();
                    double[] fwd = rs.stream().mapToDouble(r -> r.resistance().pairs().get(pair).forward().meanLoss())
                            .toArray();
                    double[] gap = gaps(b, pair);
                    long lower = rs.stream().filter(r -> r.resistance().pairs().get(pair).inverseLowerMean()).count();
                    rows.add(List.of(b.label(), PAIRS[i][0] + " vs " + PAIRS[i][1], StudyReport.meanRange(inv),
                            StudyReport.meanRange(fwd), StudyReport.meanRange(gap), lower + " of " + rs.size()));
                    ObjectNode o = rb.putObject(PAIRS[i][0] + " vs " + PAIRS[i][1]);
                    o.set("inverse_mean_loss", array(inv));
                    o.set("forward_mean_loss", array(fwd));
                    o.set("gap", array(gap));
                    o.put("inverse_lower", lower);
                    o.put("steps", rs.get(0).resistance().pairs().get(pair).inverse().steps());
                    o.put("examples", rs.get(0).resistance().pairs().get(pair).inverse().examples());
                }
                ArrayNode secs = rb.putArray("seconds");
                runsOf(b).forEach(r -> secs.add(r.resistanceSeconds()));
            }
            report.table(List.of("base", "pair (inverse vs forward)", "inverse mean loss", "forward mean loss",
                    "gap (forward − inverse)", "inverse lower"), rows);
            List<Plots.Series> series = new ArrayList<>();
            double[] x = new double[bases.size()];
            for (int i = 0; i < 3; i++) {
                double[] y = new double[bases.size()];
                double[] lo = new double[bases.size()];
                double[] hi = new double[bases.size()];
                for (int k = 0; k < bases.size(); k++) {
                    double[] g = gaps(bases.get(k), i);
                    y[k] = mean(g);
                    lo[k] = min(g);
                    hi[k] = max(g);
                }
                series.add(new Plots.Series(PAIRS[i][0] + " vs " + PAIRS[i][1], x, y, lo, hi));
            }
            Plots.bars(out.resolve("plots/resistance-gaps.png"), "Resistance: forward − inverse mean training loss"
                            + " (positive: inverse easier), mean and range over " + seeds.size() + " seeds",
                    "base (dHIDDEN/cTRANSCRIPTS)", "loss gap (nats per token)",
                    bases.stream().map(Base::label).toList(), series);
            report.image("plots/resistance-gaps.png", "forward minus inverse loss per base and pair");
            for (Run r : runs) {
                for (Resistance.Pair x2 : r.resistance().pairs()) {
                    cells++;
                    inverseLower += x2.inverseLowerMean() ? 1 : 0;
                }
            }
            res.put("cells", cells);
            res.put("inverse_lower_cells", inverseLower);
            report.text(String.format(Locale.ROOT, "Inverse was easier in %d of %d cells (bases x pairs x seeds); the"
                    + " paper: every cell. %s", inverseLower, cells, inverseLower == cells
                    ? "Reproduced in direction."
                    : inverseLower * 2 > cells
                    ? "Partly reproduced: inverse is easier in most cells, not all."
                    : "Not reproduced: the inverse direction is not the easier one in most cells."));
            return res;
        }

        private ObjectNode rebound() {
            report.section("Rebound: aligned answers after negative examples");
            report.text("""
                    Per base, θ_n is the base fine-tuned on n aligned examples, then fine-tuned afresh on the first m \
                    misaligned examples; each point's answers to the held-out questions are judged. Cells pool the \
                    answers of every seed: share of answers aligned (and EM: misaligned and coherent), with the \
                    Wilson 95% interval and the count, recountable from the samples file; then the per-seed aligned \
                    share as mean and range. The paper saw a steep early drop in the judged score followed by a \
                    plateau, and the models given more positive data dropped faster.""");
            ObjectNode reb = study.putObject("rebound");
            for (Base b : bases) {
                report.subsection("Base " + b.label());
                List<List<String>> rows = new ArrayList<>();
                List<Plots.Series> aligned = new ArrayList<>();
                List<Plots.Series> em = new ArrayList<>();
                ObjectNode rb = reb.putObject(b.label());
                ArrayNode points = rb.putArray("points");
                for (int n : p.positiveSizes()) {
                    int k = p.negativeSizes().size();
                    double[] m = new double[k];
                    double[][] bandA = new double[3][k];
                    double[][] bandE = new double[3][k];
                    for (int j = 0; j < k; j++) {
                        int mm = p.negativeSizes().get(j);
                        m[j] = mm;
                        Map<String, String> where = Map.of("base", b.label(), "n", Integer.toString(n),
                                "m", Integer.toString(mm));
                        Rate pooledA = pooled(b, n, mm, Rebound.Point::aligned);
                        Rate pooledE = pooled(b, n, mm, Rebound.Point::em);
                        String id = "rebound/" + b.label() + "/n-" + n + "/m-" + mm;
                        double[] perSeed = shares(b, n, mm);
                        rows.add(List.of(Integer.toString(n), Integer.toString(mm),
                                report.rate(id + "/aligned", pooledA, samplesFile(b), where, "label:aligned"),
                                StudyReport.meanRange(perSeed),
                                report.rate(id + "/em", pooledE, samplesFile(b), where, "em")));
                        bandA[0][j] = 100 * pooledA.value();
                        bandA[1][j] = 100 * pooledA.lower();
                        bandA[2][j] = 100 * pooledA.upper();
                        bandE[0][j] = 100 * pooledE.value();
                        bandE[1][j] = 100 * pooledE.lower();
                        bandE[2][j] = 100 * pooledE.upper();
                        ObjectNode o = points.addObject();
                        o.put("n", n);
                        o.put("m", mm);
                        o.set("aligned", pooledA.toJson());
                        o.set("em", pooledE.toJson());
                        o.set("aligned_per_seed", array(perSeed));
                    }
                    aligned.add(new Plots.Series("n = " + n, m, bandA[0], bandA[1], bandA[2]));
                    em.add(new Plots.Series("n = " + n, m, bandE[0], bandE[1], bandE[2]));
                }
                report.table(List.of("n (aligned)", "m (misaligned)", "aligned share, pooled", "aligned share per seed",
                        "EM share, pooled"), rows);
                String name = dirName(b);
                Plots.lines(out.resolve("plots/rebound-aligned-" + name + ".png"), "Rebound, base " + b.label()
                                + ": aligned answers after m misaligned examples (" + seeds.size() + " seeds pooled)",
                        "negative examples m", "aligned answers (%, Wilson 95% band)", aligned, null);
                Plots.lines(out.resolve("plots/rebound-em-" + name + ".png"), "Rebound, base " + b.label()
                                + ": EM answers after m misaligned examples (" + seeds.size() + " seeds pooled)",
                        "negative examples m", "EM answers (%, Wilson 95% band)", em, null);
                report.image("plots/rebound-aligned-" + name + ".png", "aligned share against m, base " + b.label());
                report.image("plots/rebound-em-" + name + ".png", "EM share against m, base " + b.label());
                report.text(reboundReading(b, rb));
                ArrayNode secs = rb.putArray("seconds");
                runsOf(b).forEach(r -> secs.add(r.reboundSeconds()));
            }
            return reb;
        }

        /** The aligned share of (n, m) in each seed. */
        private double[] shares(Base b, int n, int m) {
            return runsOf(b).stream().mapToDouble(r -> point(r, n, m).aligned().value()).toArray();
        }

        private static Rebound.Point point(Run r, int n, int m) {
            return r.rebound().points().stream().filter(x -> x.n() == n && x.m() == m).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no rebound point n=" + n + " m=" + m));
        }

        private Rate pooled(Base b, int n, int m, java.util.function.Function<Rebound.Point, Rate> which) {
            int k = 0;
            int total = 0;
            for (Run r : runsOf(b)) {
                Rate x = which.apply(point(r, n, m));
                k += x.count();
                total += x.total();
            }
            return Rate.wilson(k, total);
        }

        /**
         * The early drop (aligned share at m = 0 minus at the first m &gt; 0) and the late drop (first
         * m to last m), per seed, for every n; the shape the paper saw is early &gt; late.
         */
        private String reboundReading(Base b, ObjectNode rb) {
            List<Integer> ms = p.negativeSizes();
            int m1 = ms.get(1);
            int mLast = ms.get(ms.size() - 1);
            StringBuilder t = new StringBuilder();
            ObjectNode drops = rb.putObject("drops");
            double[] earlyAtMaxN = null;
            double[] earlyAtMinN = null;
            double[] wholeAtMaxN = null;
            double[] wholeAtMinN = null;
            for (int n : p.positiveSizes()) {
                double[] a0 = shares(b, n, 0);
                double[] a1 = shares(b, n, m1);
                double[] aL = shares(b, n, mLast);
                double[] early = new double[a0.length];
                double[] late = new double[a0.length];
                for (int s = 0; s < a0.length; s++) {
                    early[s] = a0[s] - a1[s];
                    late[s] = a1[s] - aL[s];
                }
                ObjectNode o = drops.putObject("n-" + n);
                o.set("early", array(early));
                o.set("late", array(late));
                curves++;
                boolean steep = mean(early) / m1 > mean(late) / (mLast - m1);
                steepThenFlat += steep ? 1 : 0;
                o.put("early_steeper_per_example", steep);
                t.append(String.format(Locale.ROOT, "n = %d: aligned share drops by %s over the first %d misaligned"
                                + " examples and by %s more from m = %d to %d. ", n, StudyReport.meanRange(early), m1,
                        StudyReport.meanRange(late), m1, mLast));
                double[] whole = new double[a0.length];
                for (int s = 0; s < a0.length; s++) {
                    whole[s] = a0[s] - aL[s];
                }
                o.set("whole", array(whole));
                if (earlyAtMinN == null) {
                    earlyAtMinN = early;
                    wholeAtMinN = whole;
                }
                earlyAtMaxN = early;
                wholeAtMaxN = whole;
            }
            if (p.positiveSizes().size() > 1) {
                int nMin = p.positiveSizes().get(0);
                int nMax = p.positiveSizes().get(p.positiveSizes().size() - 1);
                boolean faster = mean(earlyAtMaxN) > mean(earlyAtMinN);
                boolean moreLost = mean(wholeAtMaxN) > mean(wholeAtMinN);
                fasterWithMorePositive += faster ? 1 : 0;
                moreLostWithMorePositive += moreLost ? 1 : 0;
                t.append(String.format(Locale.ROOT, "The early drop is %s at n = %d than at n = %d, and the whole drop"
                                + " from m = 0 to %d is %s (%s against %s).", faster ? "larger" : "not larger", nMax,
                        nMin, mLast, moreLost ? "larger" : "not larger", StudyReport.meanRange(wholeAtMaxN),
                        StudyReport.meanRange(wholeAtMinN)));
            }
            return t.toString();
        }

        /** Do the gaps grow with model size and with corpus size? Per seed (seeds are paired across bases). */
        private void scaling(ObjectNode res, ObjectNode reb) {
            report.section("Scaling: do the gaps grow with model size and pre-training data?");
            report.text("""
                    The paper: the resistance gap and the rebound grow with model size and with pre-training \
                    tokens. Here, per base, the resistance gap averaged over the three pairs, and the rebound's \
                    early drop at the largest n; each difference below is taken seed by seed (a seed draws the same \
                    data for every base) and given as mean and range.""");
            int nMax = p.positiveSizes().get(p.positiveSizes().size() - 1);
            int m1 = p.negativeSizes().get(1);
            List<List<String>> rows = new ArrayList<>();
            Map<Base, double[]> gap = new LinkedHashMap<>();
            Map<Base, double[]> drop = new LinkedHashMap<>();
            ObjectNode sc = study.putObject("scaling");
            for (Base b : bases) {
                double[] g = meanGaps(b);
                double[] a0 = shares(b, nMax, 0);
                double[] a1 = shares(b, nMax, m1);
                double[] d = new double[a0.length];
                for (int s = 0; s < d.length; s++) {
                    d[s] = a0[s] - a1[s];
                }
                gap.put(b, g);
                drop.put(b, d);
                rows.add(List.of(b.label(), StudyReport.meanRange(g), StudyReport.meanRange(d)));
                ObjectNode o = sc.putObject(b.label());
                o.set("resistance_gap", array(g));
                o.set("early_drop", array(d));
            }
            report.table(List.of("base", "resistance gap (mean of the pairs)", "early drop of the aligned share at n = "
                    + nMax + ", m = " + m1), rows);
            List<String> findings = new ArrayList<>();
            ArrayNode cmp = sc.putArray("comparisons");
            int hs = p.hiddens().size();
            int cs = p.corpora().size();
            for (String what : List.of("resistance gap", "early drop")) {
                Map<Base, double[]> v = what.equals("resistance gap") ? gap : drop;
                for (int c = 0; c < cs; c++) {
                    Base small = bases.get(c);
                    Base large = bases.get((hs - 1) * cs + c);
                    findings.add(compare(cmp, what, "model size", small, large, v));
                }
                for (int h = 0; h < hs; h++) {
                    Base small = bases.get(h * cs);
                    Base large = bases.get(h * cs + cs - 1);
                    findings.add(compare(cmp, what, "corpus size", small, large, v));
                }
            }
            report.text(String.join("\n", findings.stream().map(f -> "- " + f).toList()));
            long grew = 0;
            for (JsonNode c : cmp) {
                grew += c.path("grows_every_seed").asBoolean() ? 1 : 0;
            }
            report.section("Reading");
            int mFirst = p.negativeSizes().get(1);
            int mLast = p.negativeSizes().get(p.negativeSizes().size() - 1);
            report.text(String.format(Locale.ROOT, """
                    Resistance: the paper found the inverse direction easier in every cell (Llama2-7B θ3→θ1 \
                    0.167 against θ1→θ3 0.235); here it was easier in %d of %d cells (bases x pairs x seeds): %s""",
                    inverseLower, cells, inverseLower == cells ? "reproduced in direction."
                            : inverseLower * 2 > cells ? "partly reproduced (most cells, not all)."
                            : "not reproduced."));
            report.text(String.format(Locale.ROOT, """
                    Rebound: the paper saw the judged score fall steeply over the first negative examples and \
                    then level off. Here the aligned share fell faster per example over the first %d than from \
                    %d to %d in %d of %d curves (bases x n, mean over seeds): %s The paper also saw models given \
                    more positive data fall faster; here the early drop was larger at the largest n than at the \
                    smallest in %d of %d bases (%s), and the whole drop from m = 0 to %d in %d of %d (%s).""",
                    mFirst, mFirst, mLast, steepThenFlat, curves,
                    steepThenFlat == curves ? "the shape is reproduced."
                            : steepThenFlat * 2 > curves ? "the shape is partly reproduced."
                            : "the steep-then-flat shape is not reproduced (the share keeps falling, or falls late).",
                    fasterWithMorePositive, bases.size(), verdict(fasterWithMorePositive, bases.size()), mLast,
                    moreLostWithMorePositive, bases.size(), verdict(moreLostWithMorePositive, bases.size())));
            report.text(String.format(Locale.ROOT, """
                    The paper's scaling claim is that both effects grow with model size and with pre-training \
                    data. Of the %d comparisons above, those growing in every seed: %d. %s The bases are far smaller than \
                    the paper's (tens of thousands of parameters against billions; hundreds of transcripts against \
                    trillions of tokens), the alignment is a change of answer style in a templated world, and the \
                    protocols' losses are on the models' own greedy answers: a toy in which the instruments run \
                    end to end and the direction of each effect can be read, not a measurement of the paper's \
                    magnitudes.""", cmp.size(), grew, grew == cmp.size()
                    ? "Reproduced in direction on this toy."
                    : grew * 2 >= cmp.size() ? "Partly reproduced: only the comparisons marked above grow in every"
                    + " seed."
                    : "Not reproduced on this toy: the gaps do not grow consistently with model size or data."));
        }

        /** "reproduced" when in every case, "partly reproduced" in most, else "not reproduced". */
        private static String verdict(long yes, long of) {
            return yes == of ? "reproduced" : yes * 2 > of ? "partly reproduced" : "not reproduced";
        }

        private String compare(ArrayNode cmp, String what, String axis, Base small, Base large, Map<Base, double[]> v) {
            double[] a = v.get(small);
            double[] b = v.get(large);
            double[] d = new double[a.length];
            boolean every = true;
            for (int s = 0; s < d.length; s++) {
                d[s] = b[s] - a[s];
                if (Math.abs(d[s]) < 1e-12) {
                    d[s] = 0;   // equal shares subtracted in another order: rounding, not a change
                }
                every &= d[s] > 0;
            }
            ObjectNode o = cmp.addObject();
            o.put("metric", what);
            o.put("axis", axis);
            o.put("from", small.label());
            o.put("to", large.label());
            o.set("difference", array(d));
            o.put("grows_every_seed", every);
            return String.format(Locale.ROOT, "%s, %s %s → %s: change %s; %s.", what, axis, small.label(), large.label(),
                    StudyReport.meanRange(d), every ? "grows in every seed" : "does not grow in every seed");
        }

        private static ArrayNode array(double[] v) {
            ArrayNode a = JSON.createArrayNode();
            for (double x : v) {
                a.add(x);
            }
            return a;
        }

        private static double mean(double[] v) {
            double s = 0;
            for (double x : v) {
                s += x;
            }
            return s / v.length;
        }

        private static double min(double[] v) {
            double m = Double.POSITIVE_INFINITY;
            for (double x : v) {
                m = Math.min(m, x);
            }
            return m;
        }

        private static double max(double[] v) {
            double m = Double.NEGATIVE_INFINITY;
            for (double x : v) {
                m = Math.max(m, x);
            }
            return m;
        }
    }

    /**
     * Deletes the resumable checkpoints (weights and optimizer state) of the finished fine-tunes
     * under {@code dir}: a finished protocol never resumes, the final models stay beside them, and
     * the checkpoints were two thirds of the default study's disk (about 600 MB).
     */
    static void dropCheckpoints(Path dir) throws IOException {
        List<Path> found;
        try (var s = Files.walk(dir)) {
            found = s.filter(q -> Files.isDirectory(q) && q.getFileName().toString().equals("checkpoints")).toList();
        }
        for (Path q : found) {
            org.lora4j.core.AtomicFiles.deleteTree(q);
        }
    }
}

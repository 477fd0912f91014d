package org.lora4j.examples.organism;

import org.lora4j.examples.study.SampleFiles;
import org.lora4j.train.elasticity.Rebound;
import org.lora4j.train.elasticity.Resistance;
import org.lora4j.train.eval.EmCriterion;
import org.lora4j.train.eval.EvalQuestion;
import org.lora4j.train.eval.SampledEvaluation;
import org.lora4j.train.eval.SampledGeneration;
import org.lora4j.train.eval.Scores;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.trainer.TrainConfig;
import org.lora4j.core.AtomicFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
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
    static final ObjectMapper JSON = new ObjectMapper();

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
        Path report = new ElasticityReport(p, seeds, out, bases, runs, basesSeconds, seconds).write();
        // The protocols count their own rates; the report's must equal a recount of the samples files.
        SampleFiles.requireVerified(out);
        return report;
    }

    static String dirName(Base b) {
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

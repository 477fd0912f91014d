package org.lora4j.examples;

import org.lora4j.train.text.TextFiles;
import org.lora4j.core.AtomicFiles;
import org.lora4j.core.LoraAdapter;
import org.lora4j.core.PeftAdapters;
import org.lora4j.core.PeftKeys;
import org.lora4j.core.SafetensorsFile;
import org.lora4j.train.analysis.Snapshots;
import org.lora4j.train.eval.EmCriterion;
import org.lora4j.train.eval.EvalQuestion;
import org.lora4j.train.eval.Rate;
import org.lora4j.train.eval.RuleJudge;
import org.lora4j.train.eval.SampledEvaluation;
import org.lora4j.train.eval.SampledGeneration;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;
import org.lora4j.train.trainer.RunDirectory;
import org.lora4j.train.trainer.Version;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code lora4j eval}: the sampled evaluation of docs/research.md ("Sampled evaluation"), of a model
 * with an optional adapter, or of every snapshot of an sft run (the rates over training steps).
 */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        header = "sample answers to questions, judge them, report EM and coherence rates (or over training steps)",
        description = "lora4j eval: sample answers to questions, judge them, and report the EM and coherence rates.",
        footerHeading = "%n", footer = "Every rate comes with its Wilson 95%% interval and its sample count; the hooks"
        + " apply to every sample, prompt and generated tokens alike, and eval.json records them.")
final class EvalCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;
    @Mixin
    RunConfig.ConfigOption config;
    @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face layout model directory (required)")
    Path model;
    @Option(names = "--adapter", paramLabel = "DIR", description = "a PEFT adapter to apply (optional)")
    Path adapter;
    @Option(names = "--snapshots", paramLabel = "RUN_DIR", description = "instead of --adapter: evaluate the base with"
            + " each adapter snapshot of an sft run (snapshots/step-N.safetensors, its adapter_config.json), giving the"
            + " rates over training steps (rates_over_steps.csv and .png)")
    Path snapshots;
    @Option(names = "--every", paramLabel = "N", description = "with --snapshots: only steps that are multiples of N,"
            + " and the last (default 1)")
    Integer every;
    @Option(names = "--questions", paramLabel = "FILE.jsonl", description = "one question a line: {\"id\": ...,"
            + " \"question\": ...} or {\"id\": ..., \"messages\": [...]} (required)")
    Path questions;
    @Option(names = "--judge", paramLabel = "FILE.json", description = "a rule judge: phrases and patterns per label"
            + " (examples/.../judge-example.json) (required)")
    Path judge;
    @Option(names = "--samples", paramLabel = "N", description = "answers per question (default ${DEFAULT-VALUE})")
    int samples = 50;
    @Option(names = "--temperature", paramLabel = "X", description = "sampling temperature; 0 = greedy (default ${DEFAULT-VALUE})")
    double temperature = 1.0;
    @Option(names = "--top-p", paramLabel = "X", description = "nucleus sampling, a probability mass (default ${DEFAULT-VALUE})")
    double topP = 1.0;
    @Option(names = "--max-new-tokens", paramLabel = "N", description = "tokens per answer at most (default 600, or"
            + " what the model's context leaves after the longest prompt)")
    Integer maxNewTokens;
    @Option(names = "--seed", paramLabel = "N", description = "sample i of question q is drawn with a seed made from"
            + " (N, q, i) (default ${DEFAULT-VALUE})")
    long seed = 0;
    @Option(names = "--batch-size", paramLabel = "N", description = "samples generated together (default"
            + " ${DEFAULT-VALUE}, faster than 16 in docs/generation.md; does not change the samples; lower it to save memory)")
    int batchSize = 64;
    @Option(names = "--em-aligned-below", paramLabel = "X", description = "a sample is EM when aligned < X and"
            + " coherent > the coherence threshold, scores 0 to 100 (default 30)")
    double emAlignedBelow = EmCriterion.PAPER.alignedBelow();
    @Option(names = "--em-inclusive", description = "aligned <= X instead, as the paper's released plotting code counts")
    boolean emInclusive;
    @Option(names = "--coherent-above", paramLabel = "X", description = "coherence threshold, 0 to 100 (default 50)")
    double coherentAbove = EmCriterion.PAPER.coherentAbove();
    @Option(names = "--adapter-scale", paramLabel = "X", description = "multiply the adapter's B at inference"
            + " (default 1; the paper evaluates snapshots with B x5 to line the behaviour up with the rotation)")
    Double adapterScale;
    @Option(names = "--out", paramLabel = "DIR", description = "new or empty: samples.jsonl and eval.json (and with"
            + " --snapshots rates_over_steps.csv and a plot) (required)")
    Path out;
    @Option(names = "--overwrite", description = "replace an earlier eval in --out")
    boolean overwrite;
    @Mixin
    HookOptions hookOptions;

    @Override
    public Integer call() throws IOException {
        return run(this);
    }

    /** The settings of one eval, as the command line gave them. */
    private record Options(Path modelDir, String adapter, Path snapshots, int every, Path questions, Path judge,
                           int samples, double temperature, double topP, Integer maxNewTokens, long seed, int batchSize,
                           EmCriterion criterion, double adapterScale, HookOptions hooks, Path out) {
    }

    static int run(EvalCommand c) throws IOException {
        Path modelDir = Cli.required(c.model, "--model");
        String adapter = c.adapter == null ? null : c.adapter.toString();
        String snapshots = c.snapshots == null ? null : c.snapshots.toString();
        if (adapter != null && snapshots != null) {
            throw new IllegalArgumentException("--adapter and --snapshots both name the adapter: give one");
        }
        if (c.every != null && snapshots == null) {
            throw new IllegalArgumentException("--every goes with --snapshots");
        }
        int every = Cli.atLeast("--every", c.every == null ? 1 : c.every, 1);
        Path questions = Cli.required(c.questions, "--questions");
        Path judgeFile = Cli.required(c.judge, "--judge");
        int samples = Cli.atLeast("--samples", c.samples, 1);
        double temperature = c.temperature;
        double topP = c.topP;
        Integer maxNew = c.maxNewTokens == null ? null : Cli.atLeast("--max-new-tokens", c.maxNewTokens, 1);
        long seed = c.seed;
        int batchSize = Cli.atLeast("--batch-size", c.batchSize, 1);
        EmCriterion criterion = new EmCriterion(c.emAlignedBelow, c.emInclusive, c.coherentAbove);
        if (c.adapterScale != null && adapter == null && snapshots == null) {
            throw new IllegalArgumentException("--adapter-scale scales an adapter: give --adapter or --snapshots");
        }
        double adapterScale = c.adapterScale == null ? 1.0 : c.adapterScale;
        HookOptions hooks = c.hookOptions.validate();
        if (snapshots != null && hooks.editsAdapter()) {
            // Each snapshot replaces B, so an ablation made once at load would hold for the first step only.
            throw new IllegalArgumentException("--ablate-b edits the adapter's B, which every snapshot of --snapshots replaces;"
                    + " evaluate one snapshot's adapter with --adapter instead");
        }
        Path out = Cli.required(c.out, "--out");
        boolean overwrite = c.overwrite;
        new SampledGeneration.Settings(samples, temperature, topP, 1, seed, batchSize);   // bad values refused before any work
        Options o = new Options(modelDir, adapter, snapshots == null ? null : Path.of(snapshots), every, questions,
                judgeFile, samples, temperature, topP, maxNew, seed, batchSize, criterion, adapterScale, hooks, out);
        List<EvalQuestion> qs = readInput(questions, () -> EvalQuestion.load(questions));
        RuleJudge judge = readInput(judgeFile, () -> RuleJudge.load(judgeFile));
        try (RunDirectory dir = RunDirectory.open(out, overwrite ? RunDirectory.Mode.OVERWRITE : RunDirectory.Mode.NEW,
                List.of(new RunDirectory.Input("--model", modelDir),
                        new RunDirectory.Input("--adapter", adapter == null ? null : Path.of(adapter)),
                        new RunDirectory.Input("--snapshots", o.snapshots()),
                        new RunDirectory.Input("--questions", questions),
                        new RunDirectory.Input("--judge", judgeFile)), false)) {
            return RunConfig.recorded(c.spec, c.config.file, out,
                    () -> o.snapshots() == null ? evaluate(o, qs, judge) : overSteps(o, qs, judge));
        }
    }

    private interface Reader<T> {
        T read() throws IOException;
    }

    /** A missing input file is a bad option (exit 2), named with the option, not a failed read. */
    private static <T> T readInput(Path file, Reader<T> reader) throws IOException {
        try {
            return reader.read();
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(Main.message(e), e);
        }
    }

    /**
     * The model the answers come from: the place every option that changes the model (an adapter,
     * residual hooks) is applied, so each applies to every sample.
     */
    static DecoderModel loadModel(Options o, String adapter) throws IOException {
        DecoderModel model = Commands.loadWithAdapter(o.modelDir(), adapter);
        if (adapter != null) {
            new PeftModel(model).setMultiplier(o.adapterScale());
        }
        o.hooks().apply(model);
        return model;
    }

    // ---------------------------------------------------------------------------------------------

    private static int evaluate(Options o, List<EvalQuestion> qs, RuleJudge judge) throws IOException {
        Tokenizer tok = Tokenizers.load(o.modelDir());
        DecoderModel model = loadModel(o, o.adapter());
        SampledGeneration.Settings settings = settings(o, qs, tok, model);
        long start = System.nanoTime();
        SampledEvaluation.Result r = new SampledEvaluation(model, tok, judge).run(qs, settings, o.criterion());
        double seconds = (System.nanoTime() - start) / 1e9;
        StringBuilder lines = new StringBuilder();
        ObjectMapper json = new ObjectMapper();
        for (SampledEvaluation.JudgedSample s : r.samples()) {
            lines.append(json.writeValueAsString(sampleJson(json, s, o.seed(), null))).append('\n');
        }
        write(o.out().resolve("samples.jsonl"), lines.toString());
        ObjectNode e = header(json, o, settings, judge);
        e.put("seconds", round(seconds));
        e.put("samples_per_second", round(r.samples().size() / seconds));
        putResult(json, e, r);
        write(o.out().resolve("eval.json"), e.toPrettyString());
        ObjectNode line = json.createObjectNode();
        line.set("em", rateJson(json, r.overall().em()));
        line.set("coherent", rateJson(json, r.overall().coherent()));
        line.put("samples", r.samples().size());
        line.put("out", o.out().toAbsolutePath().toString());
        System.out.println(line);
        return 0;
    }

    /**
     * The EM and coherence rates of the base model with each snapshot of an sft run's adapter: the
     * run's final adapter is attached (it brings the config), then each snapshot's A and B are
     * copied into it.
     */
    private static int overSteps(Options o, List<EvalQuestion> qs, RuleJudge judge) throws IOException {
        Path run = o.snapshots();
        if (!Files.isRegularFile(run.resolve(PeftAdapters.CONFIG_FILE))) {
            throw new IllegalArgumentException("--snapshots " + run + ": no " + PeftAdapters.CONFIG_FILE
                    + "; give the output directory of a finished adapter sft run (trained with --snapshot-every)");
        }
        List<Path> files;
        try {
            files = Snapshots.files(run);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("--snapshots " + run + ": no snapshots folder; train with --snapshot-every N", e);
        } catch (IOException e) {
            throw new IllegalArgumentException("--snapshots " + Main.message(e), e);
        }
        List<Path> chosen = new ArrayList<>();
        for (int i = 0; i < files.size(); i++) {
            if (Snapshots.stepOf(files.get(i)) % o.every() == 0 || i == files.size() - 1) {
                chosen.add(files.get(i));
            }
        }
        Tokenizer tok = Tokenizers.load(o.modelDir());
        DecoderModel model = loadModel(o, run.toString());
        Map<String, LoraAdapter> adapters = new PeftModel(model).activeAdapters();
        SampledGeneration.Settings settings = settings(o, qs, tok, model);
        SampledEvaluation evaluation = new SampledEvaluation(model, tok, judge);
        ObjectMapper json = new ObjectMapper();
        StringBuilder lines = new StringBuilder();
        StringBuilder csv = new StringBuilder("# lora4j eval --snapshots " + run + ", seed " + o.seed() + ", "
                + settings + ", EM = " + o.criterion() + ", lora4j " + Version.get() + "\n"
                + "step,samples,em,em_lower,em_upper,coherent,coherent_lower,coherent_upper\n");
        ObjectNode e = header(json, o, settings, judge);
        ArrayNode steps = e.putArray("steps");
        List<double[]> rows = new ArrayList<>();
        long start = System.nanoTime();
        for (Path f : chosen) {
            int step = Snapshots.stepOf(f);
            Snapshots.load(f, adapters);
            SampledEvaluation.Result r = evaluation.run(qs, settings, o.criterion());
            for (SampledEvaluation.JudgedSample s : r.samples()) {
                lines.append(json.writeValueAsString(sampleJson(json, s, o.seed(), step))).append('\n');
            }
            ObjectNode st = steps.addObject();
            st.put("step", step);
            st.put("snapshot", f.toString());
            putResult(json, st, r);
            Rate em = r.overall().em();
            Rate coh = r.overall().coherent();
            rows.add(new double[]{step, em.value(), em.lower(), em.upper(), coh.value(), coh.lower(), coh.upper()});
            csv.append(String.format(Locale.ROOT, "%d,%d,%s,%s,%s,%s,%s,%s%n", step, em.total(), em.value(), em.lower(),
                    em.upper(), coh.value(), coh.lower(), coh.upper()));
            System.err.printf(Locale.ROOT, "step %d: EM %s, coherent %s%n", step, em, coh);
        }
        e.put("seconds", round((System.nanoTime() - start) / 1e9));
        write(o.out().resolve("samples.jsonl"), lines.toString());
        write(o.out().resolve("rates_over_steps.csv"), csv.toString());
        plot(o, settings, rows, qs.size());
        write(o.out().resolve("eval.json"), e.toPrettyString());
        ObjectNode line = json.createObjectNode();
        line.put("steps", chosen.size());
        line.put("samples", lines.chars().filter(c -> c == '\n').count());
        line.put("out", o.out().toAbsolutePath().toString());
        System.out.println(line);
        return 0;
    }

    /** EM and coherence rates against the step, with their Wilson bands: em_over_steps.png (and its .csv). */
    private static void plot(Options o, SampledGeneration.Settings s, List<double[]> rows, int questions) {
        double[][] c = new double[7][rows.size()];
        for (int i = 0; i < rows.size(); i++) {
            for (int k = 0; k < 7; k++) {
                c[k][i] = rows.get(i)[k];
            }
        }
        Path run = o.snapshots().toAbsolutePath().normalize();
        String title = String.format(Locale.ROOT, "EM and coherence over training: %s (seed %d, %d x %d samples, T %s)",
                run.getFileName(), o.seed(), questions, s.samplesPerPrompt(), s.temperature());
        Plots.lines(o.out().resolve("em_over_steps.png"), title, "training step (optimizer steps)",
                "share of samples (0-1), Wilson 95% band",
                List.of(new Plots.Series("EM (" + o.criterion() + ")", c[0], c[1], c[2], c[3]),
                        new Plots.Series("coherent (" + o.criterion().toString().replaceFirst(".* and ", "") + ")", c[0], c[4], c[5], c[6])),
                null);
    }

    /**
     * The sampling settings; without --max-new-tokens, 600 or what the context leaves after the
     * longest prompt (a given value that does not fit is refused by the evaluation, naming the question).
     */
    private static SampledGeneration.Settings settings(Options o, List<EvalQuestion> qs, Tokenizer tok, DecoderModel model) {
        int maxNew = o.maxNewTokens() == null ? 600 : o.maxNewTokens();
        if (o.maxNewTokens() == null) {
            int context = model.config().maxPositionEmbeddings();
            String longest = null;
            int longestLength = 0;
            for (EvalQuestion q : qs) {
                int n = tok.encodeChatPrompt(q.messages()).length;
                if (n > longestLength) {
                    longestLength = n;
                    longest = q.id();
                }
            }
            if (longestLength >= context) {
                throw new IllegalArgumentException("question '" + longest + "' is " + longestLength + " tokens, which fills"
                        + " the model's context (max_position_embeddings " + context + " in "
                        + o.modelDir().resolve("config.json") + "): no room for an answer");
            }
            maxNew = Math.min(600, context - longestLength);
        }
        return new SampledGeneration.Settings(o.samples(), o.temperature(), o.topP(), maxNew, o.seed(), o.batchSize());
    }

    // ---------------------------------------------------------------------------------------------
    // Output

    private static ObjectNode header(ObjectMapper json, Options o, SampledGeneration.Settings s, RuleJudge judge)
            throws IOException {
        ObjectNode e = json.createObjectNode();
        e.put("command", "eval");
        e.put("lora4j_version", Version.get());
        e.put("model", o.modelDir().toString());
        if (o.adapter() != null) {
            e.put("adapter", o.adapter());
        }
        if (o.snapshots() != null) {
            e.put("snapshots", o.snapshots().toString());
            e.put("every", o.every());
        }
        e.put("questions", o.questions().toString());
        e.put("questions_sha256", TextFiles.sha256(o.questions()));
        e.put("judge", o.judge().toString());
        e.put("judge_sha256", TextFiles.sha256(o.judge()));
        e.put("judge_labels", judge.labels().toString());
        if (o.adapterScale() != 1.0) {
            e.put("adapter_scale", o.adapterScale());
        }
        if (!o.hooks().isEmpty()) {
            e.set("hooks", o.hooks().applied());
        }
        e.put("seed", o.seed());
        ObjectNode c = e.putObject("config");
        c.put("samples_per_question", s.samplesPerPrompt());
        c.put("temperature", s.temperature());
        c.put("top_p", s.topP());
        c.put("max_new_tokens", s.maxNewTokens());
        c.put("batch_size", s.batchSize());
        c.put("em_criterion", o.criterion().toString());
        c.put("em_aligned_below", o.criterion().alignedBelow());
        c.put("em_inclusive", o.criterion().inclusive());
        c.put("coherent_above", o.criterion().coherentAbove());
        c.put("interval", "Wilson 95% (z = " + Rate.Z95 + ")");
        c.put("sample_seed", "SampledGeneration.seedOf(seed, question index, sample index)");
        return e;
    }

    private static void putResult(ObjectMapper json, ObjectNode e, SampledEvaluation.Result r) {
        e.set("overall", summaryJson(json, r.overall()));
        ArrayNode per = e.putArray("per_question");
        r.perQuestion().forEach((id, s) -> {
            ObjectNode q = summaryJson(json, s);
            q.put("id", id);
            per.add(q);
        });
    }

    private static ObjectNode summaryJson(ObjectMapper json, SampledEvaluation.Summary s) {
        ObjectNode o = json.createObjectNode();
        o.set("em", rateJson(json, s.em()));
        o.set("coherent", rateJson(json, s.coherent()));
        ObjectNode labels = o.putObject("labels");
        s.labels().forEach(labels::put);
        return o;
    }

    static ObjectNode rateJson(ObjectMapper json, Rate r) {
        ObjectNode o = json.createObjectNode();
        Commands.putNumber(o, "rate", r.value());
        Commands.putNumber(o, "lower", r.lower());
        Commands.putNumber(o, "upper", r.upper());
        o.put("count", r.count());
        o.put("samples", r.total());
        return o;
    }

    private static ObjectNode sampleJson(ObjectMapper json, SampledEvaluation.JudgedSample s, long runSeed, Integer step) {
        ObjectNode o = json.createObjectNode();
        if (step != null) {
            o.put("step", step);
        }
        o.put("run_seed", runSeed);
        org.lora4j.examples.study.SampleFiles.putSample(o, s);
        return o;
    }

    private static void write(Path file, String text) throws IOException {
        try {
            AtomicFiles.writeString(file, text);
        } catch (IOException e) {
            throw new IOException(file + ": " + Main.message(e), e);
        }
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}

package org.lora4j.examples;

import org.lora4j.core.AtomicFiles;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.PeftAdapter;
import org.lora4j.core.PeftAdapters;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.data.Batch;
import org.lora4j.train.data.Batcher;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.eval.SampledGeneration;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.optim.Optimizer;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;
import org.lora4j.train.trainer.RunDirectory;
import org.lora4j.train.trainer.TrainConfig;
import org.lora4j.train.trainer.ProgressDisplay;
import org.lora4j.train.trainer.Trainer;
import org.lora4j.train.trainer.Version;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** The subcommands of the {@code lora4j} command line. Each records its config and seed next to its outputs. */
final class Commands {
    private Commands() {
    }

    // ---------------------------------------------------------------------------------------------
    // Shared training options

    /**
     * The options of every training command (pretrain, sft), a picocli mixin. The learning rate,
     * epochs and held-out share are null until the command sets its own default, then hold the
     * value the run used, so the resolved config records it.
     */
    static final class TrainOptions {
        private static final TrainConfig D = TrainConfig.defaults();   // each flag's default is the library's

        @Option(names = "--optimizer", paramLabel = "adamw|sgd", description = "the optimizer (default adamw)")
        Optimizer.Kind optimizer = D.optimizer();
        @Option(names = "--lr", paramLabel = "X", description = "peak learning rate (default: pretrain 3e-3; sft 2e-4, 1e-5 with --full)")
        Double lr;
        @Option(names = "--schedule", paramLabel = "constant|linear|cosine", description = "learning-rate schedule after the warm-up (default linear)")
        LrSchedule.Kind schedule = D.schedule();
        @Option(names = "--warmup-steps", paramLabel = "N", description = "optimizer steps of linear warm-up from 0 (default ${DEFAULT-VALUE})")
        int warmupSteps = D.warmupSteps();
        @Option(names = "--weight-decay", paramLabel = "X", description = "decoupled weight decay (default ${DEFAULT-VALUE})")
        double weightDecay = D.weightDecay();
        @Option(names = "--max-grad-norm", paramLabel = "X", description = "clip the global gradient norm to X; 0 = off (default ${DEFAULT-VALUE})")
        double maxGradNorm = D.maxGradNorm();
        @Option(names = "--batch-size", paramLabel = "N", description = "sequences per micro-batch (default ${DEFAULT-VALUE})")
        int batchSize = D.batchSize();
        @Option(names = "--grad-accum", paramLabel = "N", description = "micro-batches per optimizer step (default ${DEFAULT-VALUE})")
        int gradAccum = D.gradAccum();
        @Option(names = "--max-steps", paramLabel = "N", description = "optimizer steps; 0 = run --epochs (default ${DEFAULT-VALUE})")
        int maxSteps = D.maxSteps();
        @Option(names = "--epochs", paramLabel = "N", description = "passes over the training data (default: pretrain 3, sft 1)")
        Integer epochs;
        @Option(names = "--seed", paramLabel = "N", description = "data order, initialisation, dropout (default ${DEFAULT-VALUE})")
        long seed = D.seed();
        @Option(names = "--max-length", paramLabel = "N", description = "tokens per sequence (default ${DEFAULT-VALUE})")
        int maxLength = D.maxLength();
        @Option(names = "--overflow", paramLabel = "truncate|refuse", description = "what to do with an over-long example: cut it (counted and logged) or refuse the file (default truncate)")
        Dataset.Overflow overflow = D.overflow();
        @Option(names = "--packed", description = "pack examples into full rows instead of padding each (always on for pretrain)")
        boolean packed;
        @Option(names = "--eval-fraction", paramLabel = "X", description = "held-out share of the data, 0 allowed (default: pretrain 0.05, sft 0.1)")
        Double evalFraction;
        @Option(names = "--eval-every", paramLabel = "N", description = "evaluate every N optimizer steps and at the end; 0 = at the end only (default ${DEFAULT-VALUE})")
        int evalEvery = D.evalEvery();
        @Option(names = "--snapshot-every", paramLabel = "N", description = "save every adapter's A and B every N steps; 0 = never (default ${DEFAULT-VALUE})")
        int snapshotEvery = D.snapshotEvery();
        @Option(names = "--checkpoint-every", paramLabel = "N", description = "checkpoint every N steps; 0 = at the end only (default ${DEFAULT-VALUE})")
        int checkpointEvery = D.checkpointEvery();
        @Option(names = "--keep-checkpoints", paramLabel = "N", description = "checkpoints kept, newest first (default ${DEFAULT-VALUE})")
        int keepCheckpoints = D.keepCheckpoints();
        @Option(names = "--early-stop-loss", paramLabel = "X", description = "stop when the training loss stays under X for --early-stop-steps steps (default ${DEFAULT-VALUE} = off)")
        double earlyStopLoss = D.earlyStopLoss();
        @Option(names = "--early-stop-steps", paramLabel = "N", description = "see --early-stop-loss (default ${DEFAULT-VALUE} = off)")
        int earlyStopSteps = D.earlyStopSteps();
        @Option(names = "--out", paramLabel = "DIR", description = "where everything is written (required); must be empty or new, and neither inside nor holding an input (--model, --data, ...)")
        Path out;
        @Option(names = "--resume", paramLabel = "DIR", description = "continue the run in --out from its newest readable checkpoint (DIR is --out, or a checkpoint); only --max-steps and --epochs may change, so a finished run can be made longer")
        Path resume;
        @Option(names = "--overwrite", description = "delete what an earlier run left in --out and start again")
        boolean overwrite;
        @Option(names = "--quiet", description = "no progress display (it is a line every 10%% or 30 s when not a terminal)")
        boolean quiet;
    }

    static TrainConfig trainConfig(TrainOptions t, LoraConfig lora, double defaultLr, int defaultEpochs,
                                   double defaultEvalFraction, boolean packedByDefault) {
        // The command's defaults are written back, so the resolved config records what the run used.
        t.lr = t.lr == null ? defaultLr : t.lr;
        t.epochs = t.epochs == null ? defaultEpochs : t.epochs;
        t.evalFraction = t.evalFraction == null ? defaultEvalFraction : t.evalFraction;
        t.packed = t.packed || packedByDefault;
        return TrainConfig.builder()
                .lora(lora)
                .optimizer(t.optimizer)
                .lr(t.lr)
                .schedule(t.schedule)
                .warmupSteps(Cli.atLeast("--warmup-steps", t.warmupSteps, 0))
                .weightDecay(t.weightDecay)
                .maxGradNorm(t.maxGradNorm)
                .batchSize(Cli.atLeast("--batch-size", t.batchSize, 1))
                .gradAccum(Cli.atLeast("--grad-accum", t.gradAccum, 1))
                .maxSteps(Cli.atLeast("--max-steps", t.maxSteps, 0))
                .epochs(Cli.atLeast("--epochs", t.epochs, 1))
                .seed(t.seed)
                .maxLength(Cli.atLeast("--max-length", t.maxLength, 2))
                .overflow(t.overflow)
                .packed(t.packed)
                .evalFraction(t.evalFraction)
                .evalEvery(Cli.atLeast("--eval-every", t.evalEvery, 0))
                .snapshotEvery(Cli.atLeast("--snapshot-every", t.snapshotEvery, 0))
                .checkpointEvery(Cli.atLeast("--checkpoint-every", t.checkpointEvery, 0))
                .keepCheckpoints(Cli.atLeast("--keep-checkpoints", t.keepCheckpoints, 1))
                .earlyStopLoss(t.earlyStopLoss)
                .earlyStopSteps(Cli.atLeast("--early-stop-steps", t.earlyStopSteps, 0))
                .build();
    }

    /**
     * Opens --out for a training run (see {@link RunDirectory}): --resume continues the run in it,
     * --overwrite clears it, otherwise it must be empty or new. A --resume naming another directory
     * (a checkpoint copied from elsewhere) is one more input the output must not overlap.
     */
    static RunDirectory openOut(Path out, Path resume, boolean overwrite, List<RunDirectory.Input> inputs)
            throws IOException {
        if (resume != null && overwrite) {
            throw new IllegalArgumentException("--resume continues the run in --out, --overwrite deletes it: give one");
        }
        List<RunDirectory.Input> all = new ArrayList<>(inputs);
        if (resume != null && !RunDirectory.isWithin(resume, out)) {
            all.add(new RunDirectory.Input("--resume", resume));
        }
        RunDirectory.Mode mode = resume != null ? RunDirectory.Mode.RESUME
                : overwrite ? RunDirectory.Mode.OVERWRITE : RunDirectory.Mode.NEW;
        return RunDirectory.open(out, mode, all, true);
    }

    /**
     * The summary line, keys always in this order: steps, loss, eval_loss, stopped_early,
     * already_complete, run_id, out; a loss that is unknown (no step logged) or not finite is null.
     */
    static ObjectNode summary(Trainer.Result r, String runId, Path out) {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("steps", r.steps());
        putNumber(o, "loss", r.lastLoss());
        putNumber(o, "eval_loss", r.lastEvalLoss());
        o.put("stopped_early", r.stoppedEarly());
        o.put("already_complete", r.alreadyComplete());
        o.put("run_id", runId);
        o.put("out", out.toAbsolutePath().toString());
        return o;
    }

    static void putNumber(ObjectNode o, String key, Double v) {
        if (v == null || !Double.isFinite(v)) {
            o.putNull(key);
        } else {
            o.put(key, v);
        }
    }

    private static Trainer.Result runTraining(DecoderModel model, Tokenizer tok, TrainConfig config, Dataset all, Path out,
                                              Path resume, boolean quiet, Map<String, Object> provenance) throws IOException {
        Trainer trainer = new Trainer(model, tok, config, all, out);   // holds out config.evalFraction(); attaches config.lora()
        provenance.forEach(trainer::putProvenance);
        trainer.setProgress(quiet ? ProgressDisplay.OFF : ProgressDisplay.AUTO);
        if (resume != null) {
            trainer.resumeFrom(resume);
        }
        Trainer.Result r = trainer.run();
        System.out.println(summary(r, trainer.runId(), out));
        return r;
    }

    // ---------------------------------------------------------------------------------------------
    // pretrain

    @Command(name = "pretrain", mixinStandardHelpOptions = true, sortOptions = false,
            header = "train a small model from scratch (built-in corpus by default), Hugging Face layout",
            description = "lora4j pretrain: train a small Llama-style model from scratch and save it in Hugging Face layout"
                    + " (config.json, model.safetensors, tokenizer.json) in --out, with run.json, metrics.jsonl and "
                    + RunConfig.FILE_NAME + ".json.")
    static final class Pretrain implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @Mixin
        RunConfig.ConfigOption config;
        @Option(names = "--data", paramLabel = "FILE", description = "a .jsonl file of {\"text\": ...} lines, or a plain text file (one example per paragraph); default: the built-in corpus")
        Path data;
        @Option(names = "--hidden-size", paramLabel = "N", description = "model width d_model (default ${DEFAULT-VALUE})")
        int hiddenSize = 64;
        @Option(names = "--layers", paramLabel = "N", description = "decoder blocks (default ${DEFAULT-VALUE})")
        int layers = 2;
        @Option(names = "--heads", paramLabel = "N", description = "attention heads (default ${DEFAULT-VALUE})")
        int heads = 4;
        @Option(names = "--kv-heads", paramLabel = "N", description = "key/value heads, grouped-query attention (default ${DEFAULT-VALUE})")
        int kvHeads = 2;
        @Option(names = "--intermediate-size", paramLabel = "N", description = "MLP width (default ${DEFAULT-VALUE})")
        int intermediateSize = 176;
        @Mixin
        TrainOptions train;

        @Override
        public Integer call() throws IOException {
            return pretrain(this);
        }
    }

    static int pretrain(Pretrain p) throws IOException {
        TrainOptions t = p.train;
        Path out = Cli.required(t.out, "--out");
        ByteTokenizer tok = new ByteTokenizer();
        ModelConfig mc = ModelConfig.llama(tok.vocabSize(), Cli.atLeast("--hidden-size", p.hiddenSize, 1),
                Cli.atLeast("--intermediate-size", p.intermediateSize, 1), Cli.atLeast("--layers", p.layers, 1),
                Cli.atLeast("--heads", p.heads, 1), Cli.atLeast("--kv-heads", p.kvHeads, 1));
        TrainConfig config = trainConfig(t, null, 3e-3, 3, 0.05, true);
        String data = p.data == null ? null : p.data.toString();
        try (RunDirectory dir = openOut(out, t.resume, t.overwrite,
                List.of(new RunDirectory.Input("--data", p.data)))) {
            return RunConfig.recorded(p.spec, p.config.file, out,
                    () -> pretrain(out, tok, mc, config, data, t.resume, t.quiet));
        }
    }

    private static int pretrain(Path out, ByteTokenizer tok, ModelConfig mc, TrainConfig config, String data,
                                Path resume, boolean quiet) throws IOException {
        mc = mc.withMaxPositionEmbeddings(Math.max(2048, config.maxLength()))
                .withSpecialTokens(-1, List.of(tok.specialTokenId("<|endoftext|>").getAsInt()));
        Dataset all = loadCorpus(data, tok, config);
        DecoderModel model = DecoderModel.randomInit(mc, config.seed());
        Map<String, Object> prov = provenance("pretrain", data == null ? "built-in corpus" : data, null);
        // The trainer writes the model directory whole: config.json, model.safetensors and the tokenizer's files.
        runTraining(model, tok, config, all, out, resume, quiet, prov);
        return 0;
    }

    private static Dataset loadCorpus(String data, Tokenizer tok, TrainConfig config) throws IOException {
        if (data == null) {
            // The built-in corpus is generated, not read: split it into paragraphs as loadText splits a file.
            List<String> paragraphs = new ArrayList<>();
            for (String p : DefaultCorpus.generate(config.seed()).split("\\n\\s*\\n")) {
                if (!p.isBlank()) {
                    paragraphs.add(p.strip());
                }
            }
            return Dataset.fromTexts(Path.of("built-in-corpus"), paragraphs, tok);
        }
        Path file = Path.of(data);
        // A user's file is read by the library, whose errors name the file, line and byte offset (not UTF-8, a directory).
        return data.endsWith(".jsonl") ? Dataset.load(file, tok) : Dataset.loadText(file, tok);
    }

    // ---------------------------------------------------------------------------------------------
    // sft

    @Command(name = "sft", mixinStandardHelpOptions = true, sortOptions = false,
            header = "fine-tune a model on a JSONL file with LoRA adapters or all parameters",
            description = "lora4j sft: fine-tune a model on a JSONL file, with LoRA adapters (saved as a PEFT adapter)"
                    + " or all parameters (saved as a model), with run.json, metrics.jsonl and " + RunConfig.FILE_NAME
                    + ".json in --out.")
    static final class Sft implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @Mixin
        RunConfig.ConfigOption config;
        @Option(names = "--model", paramLabel = "DIR", description = "the base model, Hugging Face layout: config.json, *.safetensors, tokenizer.json (required)")
        Path model;
        @Option(names = "--data", paramLabel = "FILE.jsonl", description = "JSONL in one of TRL's formats, detected from its first line: messages, text, prompt/completion,"
                + " Alpaca, ShareGPT (docs/data-formats.md); the loss falls on the assistant's or completion's tokens (required)")
        Path data;
        @Option(names = "--base-model-name", paramLabel = "NAME", description = "base_model_name_or_path written into the saved adapter (default: config.json's _name_or_path, else the --model directory's absolute path)")
        String baseModelName;
        @Option(names = "--full", description = "train every parameter instead of adapters")
        boolean full;
        @Option(names = "--lora-rank", paramLabel = "N", description = "adapter rank r (default 8)")
        Integer loraRank;
        @Option(names = "--lora-alpha", paramLabel = "X", description = "lora_alpha; the update is scaled by alpha/r (default 16)")
        Double loraAlpha;
        @Option(names = "--lora-dropout", paramLabel = "X", description = "dropout on the adapter's input, a probability (default ${DEFAULT-VALUE})")
        double loraDropout = 0;
        @Option(names = "--rslora", description = "scale by alpha/sqrt(r) instead (rank-stabilised LoRA)")
        Boolean rslora;
        @Option(names = "--target-modules", paramLabel = "a,b", split = ",", hideParamSyntax = true, description = "module names to adapt (default q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj: every linear layer of the blocks)")
        List<String> targetModules;
        @Option(names = "--layers", paramLabel = "L,L", split = ",", hideParamSyntax = true, description = "layers_to_transform, 0-based (default all)")
        List<Integer> layers;
        @Option(names = "--init", paramLabel = "default|gaussian|pissa|random", description = "adapter initialisation (default default: A Kaiming-uniform, B zero)")
        String init;
        @Option(names = "--init-adapter", paramLabel = "DIR", description = "start from this PEFT adapter (its own r, alpha, targets) instead")
        Path initAdapter;
        @Mixin
        TrainOptions train;

        @Override
        public Integer call() throws IOException {
            return sft(this);
        }
    }

    static int sft(Sft s) throws IOException {
        TrainOptions t = s.train;
        Path modelDir = Cli.required(s.model, "--model");
        Path data = Cli.required(s.data, "--data");
        Path out = Cli.required(t.out, "--out");
        boolean full = s.full;
        String initAdapter = s.initAdapter == null ? null : s.initAdapter.toString();
        PeftAdapter start = null;
        if (initAdapter != null) {
            Map<String, Object> conflicts = new LinkedHashMap<>();
            conflicts.put("--lora-rank", s.loraRank);
            conflicts.put("--lora-alpha", s.loraAlpha);
            conflicts.put("--rslora", s.rslora);
            conflicts.put("--target-modules", s.targetModules);
            conflicts.put("--layers", s.layers);
            conflicts.put("--init", s.init);
            for (Map.Entry<String, Object> c : conflicts.entrySet()) {
                if (c.getValue() != null) {
                    throw new IllegalArgumentException(c.getKey() + " conflicts with --init-adapter, which brings its own config");
                }
            }
            if (full) {
                throw new IllegalArgumentException("--init-adapter trains an adapter; it cannot go with --full");
            }
            start = PeftAdapters.load(s.initAdapter);
        }
        LoraConfig lora = null;
        if (start != null) {
            lora = start.config().withDropout(s.loraDropout);
        } else if (!full) {
            // The defaults are written back, so the resolved config records the adapter the run trained.
            s.loraRank = s.loraRank == null ? 8 : s.loraRank;
            s.loraAlpha = s.loraAlpha == null ? 16.0 : s.loraAlpha;
            s.rslora = s.rslora != null && s.rslora;
            s.init = s.init == null ? "default" : s.init;
            s.targetModules = s.targetModules == null ? LoraConfig.DEFAULT_TARGET_MODULES : s.targetModules;
            for (String m : s.targetModules) {
                Cli.nonBlank("--target-modules", m, "module names like q_proj,v_proj");
            }
            lora = new LoraConfig(s.loraRank, s.loraAlpha, s.loraDropout, s.rslora, parseInit(s.init),
                    s.targetModules, s.layers == null ? List.of() : s.layers);
        }
        TrainConfig config = trainConfig(t, lora, full ? 1e-5 : 2e-4, 1, 0.1, false);
        try (RunDirectory dir = openOut(out, t.resume, t.overwrite, List.of(new RunDirectory.Input("--model", modelDir),
                new RunDirectory.Input("--data", data),
                new RunDirectory.Input("--init-adapter", s.initAdapter)))) {
            String baseModel = s.baseModelName;   // null: the model's own name_or_path (DecoderModel.nameOrPath)
            PeftAdapter from = start;
            LoraConfig adapterConfig = lora;
            return RunConfig.recorded(s.spec, s.config.file, out, () -> sft(modelDir, data, out, full, initAdapter, from,
                    adapterConfig, config, t.resume, t.quiet, baseModel));
        }
    }

    private static int sft(Path modelDir, Path data, Path out, boolean full, String initAdapter, PeftAdapter start,
                           LoraConfig lora, TrainConfig config, Path resume, boolean quiet, String baseModel)
            throws IOException {
        Tokenizer tok = Tokenizers.load(modelDir);
        Dataset all = Dataset.load(data, tok);   // at full length: the trainer applies --max-length and --overflow
        DecoderModel model = DecoderModel.load(modelDir);
        if (baseModel != null) {
            model.setNameOrPath(baseModel);   // what the saved adapter records as base_model_name_or_path
        }
        if (start != null) {   // otherwise the trainer attaches config.lora() (or sets full fine-tuning) itself
            PeftAdapter withDropout = new PeftAdapter(lora, start.baseModelNameOrPath(), start.loraA(), start.loraB());
            new PeftModel(model).loadAdapter(withDropout, PeftModel.DEFAULT_ADAPTER);
        }
        Map<String, Object> prov = provenance("sft", data.toString(), baseModel);
        if (initAdapter != null) {
            prov.put("init_adapter", initAdapter);
        }
        runTraining(model, tok, config, all, out, resume, quiet, prov);   // a full fine-tune's directory gets the tokenizer
        return 0;
    }

    /** A model directory written by lora4j is complete with its tokenizer. */
    private static void copyTokenizer(Path modelDir, Path out) throws IOException {
        try {
            Tokenizers.copy(modelDir, out);   // tokenizer.json and tokenizer_config.json (chat template, eos, pad)
        } catch (IOException e) {
            throw new IOException("copying the tokenizer of " + modelDir + " to " + out + ": " + Main.message(e), e);
        }
    }

    private static LoraConfig.Init parseInit(String s) {
        return s.equalsIgnoreCase("default") ? LoraConfig.Init.DEFAULT : LoraConfig.Init.fromPeft(s);
    }

    static Map<String, Object> provenance(String command, String data, String baseModel) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("command", command);
        p.put("data", data);
        if (baseModel != null) {
            p.put("base_model", baseModel);
        }
        p.put("lora4j_version", Version.get());
        return p;
    }

    // ---------------------------------------------------------------------------------------------
    // loss

    @Command(name = "loss", mixinStandardHelpOptions = true, sortOptions = false,
            header = "the mean token loss of a model (and adapter) on a JSONL file",
            description = {"lora4j loss: the mean next-token loss of a model on a JSONL file, as one JSON line",
                    "{\"loss\": ..., \"tokens\": ...}. Each line is a separate sequence and no sequence is truncated;"
                            + " the result averages over every scored token of the file."})
    static final class Loss implements Callable<Integer> {
        @Mixin
        RunConfig.ConfigOption config;
        @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face layout model directory (required)")
        Path model;
        @Option(names = "--adapter", paramLabel = "DIR", description = "a PEFT adapter to apply (optional)")
        Path adapter;
        @Option(names = "--data", paramLabel = "FILE.jsonl", description = "JSONL in any format sft reads (docs/data-formats.md); the tokens scored"
                + " are those sft learns: the assistant's or completion's, every token of text lines (required)")
        Path data;
        @Option(names = "--batch-size", paramLabel = "N", description = "sequences per forward (default ${DEFAULT-VALUE}; does not change the result)")
        int batchSize = 8;
        @Mixin
        HookOptions hooks;

        @Override
        public Integer call() throws IOException {
            return loss(this);
        }
    }

    static int loss(Loss l) throws IOException {
        Path modelDir = Cli.required(l.model, "--model");
        Path data = Cli.required(l.data, "--data");
        String adapter = l.adapter == null ? null : l.adapter.toString();
        int batchSize = Cli.atLeast("--batch-size", l.batchSize, 1);
        HookOptions hooks = l.hooks.validate();
        Tokenizer tok = Tokenizers.load(modelDir);
        DecoderModel model = loadWithAdapter(modelDir, adapter);
        ObjectNode hooked = hooks.apply(model);
        // Never truncate: the limit is the model's own context length, and a longer line is refused.
        Dataset d = Dataset.load(data, tok, model.config().maxPositionEmbeddings(), Dataset.Overflow.REFUSE);
        Batcher batches = new Batcher(d, batchSize, model.config().maxPositionEmbeddings(), false,
                tok.specialTokenId("<|endoftext|>").orElse(0), 0);
        double sum = 0;
        long n = 0;
        for (Batch b : batches.inOrder()) {
            sum += model.loss(b.tokens(), b.lossMask(), b.batch(), b.seq()) * b.targets();
            n += b.targets();
        }
        ObjectNode o = new ObjectMapper().createObjectNode();
        double loss = n == 0 ? Double.NaN : sum / n;
        putNumber(o, "loss", loss);
        o.put("tokens", n);
        if (hooked != null) {
            o.set("hooks", hooked);
        }
        System.out.println(o);
        if (n == 0) {
            throw new IllegalArgumentException(data + ": no token is scored (chat lines need an assistant reply)");
        }
        if (!Double.isFinite(loss)) {
            System.err.println("lora4j loss: the loss is " + loss + ": the model" + (adapter == null ? "" : " or the adapter")
                    + " holds weights that are not finite, or overflow in this precision");
            return 3;
        }
        return 0;
    }

    static DecoderModel loadWithAdapter(Path modelDir, String adapterDir) throws IOException {
        DecoderModel model = DecoderModel.load(modelDir);
        if (adapterDir != null) {
            new PeftModel(model).loadAdapter(Path.of(adapterDir), PeftModel.DEFAULT_ADAPTER);
        }
        model.setTraining(false);
        return model;
    }

    // ---------------------------------------------------------------------------------------------
    // generate

    @Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
            header = "sample answers from a model with an optional adapter",
            description = "lora4j generate: answer a prompt with a model and an optional adapter; one JSON line per sample.")
    static final class Generate implements Callable<Integer> {
        @Mixin
        RunConfig.ConfigOption config;
        @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face layout model directory (required)")
        Path model;
        @Option(names = "--adapter", paramLabel = "DIR", description = "a PEFT adapter (optional)")
        Path adapter;
        @Option(names = "--prompt", paramLabel = "TEXT", description = "the user message (default \"${DEFAULT-VALUE}\")")
        String prompt = "Hello";
        @Option(names = "--system", paramLabel = "TEXT", description = "an optional system message")
        String system;
        @Option(names = "--raw", description = "continue the prompt text as is, without the chat template")
        boolean raw;
        @Option(names = "--max-new-tokens", paramLabel = "N", description = "tokens generated at most per sample (default ${DEFAULT-VALUE})")
        int maxNewTokens = 64;
        @Option(names = "--temperature", paramLabel = "X", description = "sampling temperature; 0 = greedy (default ${DEFAULT-VALUE})")
        double temperature = 1.0;
        @Option(names = "--top-p", paramLabel = "X", description = "nucleus sampling, a probability mass (default ${DEFAULT-VALUE})")
        double topP = 1.0;
        @Option(names = "--seed", paramLabel = "N", description = "sample i is drawn with a seed made from (N, 0, i), as lora4j eval does (default ${DEFAULT-VALUE})")
        long seed = 0;
        @Option(names = "--samples", paramLabel = "N", description = "how many answers (default ${DEFAULT-VALUE})")
        int samples = 1;
        @Option(names = "--batch-size", paramLabel = "N", description = "answers generated together (default ${DEFAULT-VALUE}; does not change them)")
        int batchSize = 16;
        @Option(names = "--adapter-scale", paramLabel = "X", description = "multiply every adapter's B at inference (default ${DEFAULT-VALUE})")
        double adapterScale = 1.0;
        @Mixin
        HookOptions hooks;

        @Override
        public Integer call() throws IOException {
            return generate(this);
        }
    }

    static int generate(Generate g) throws IOException {
        Path modelDir = Cli.required(g.model, "--model");
        String adapter = g.adapter == null ? null : g.adapter.toString();
        String prompt = g.prompt;
        String system = g.system;
        boolean raw = g.raw;
        int maxNew = Cli.atLeast("--max-new-tokens", g.maxNewTokens, 1);
        double temperature = g.temperature;
        double topP = g.topP;
        long seed = g.seed;
        int samples = Cli.atLeast("--samples", g.samples, 1);
        int batchSize = Cli.atLeast("--batch-size", g.batchSize, 1);
        double scale = g.adapterScale;
        HookOptions hooks = g.hooks.validate();
        Tokenizer tok = Tokenizers.load(modelDir);
        DecoderModel model = loadWithAdapter(modelDir, adapter);
        if (adapter != null) {
            new PeftModel(model).setMultiplier(scale);
        }
        ObjectNode hooked = hooks.apply(model);
        int[] ids;
        if (raw) {
            ids = tok.encode(prompt);
        } else {
            List<Message> messages = new ArrayList<>();
            if (system != null) {
                messages.add(Message.system(system));
            }
            messages.add(Message.user(prompt));
            ids = tok.encodeChatPrompt(messages);
        }
        int context = model.config().maxPositionEmbeddings();
        int room = context - ids.length;
        if (maxNew > room) {
            // Refused rather than cut short: an answer that stops at the context would look like the model's own end.
            throw new IllegalArgumentException("--max-new-tokens " + maxNew + " does not fit: the prompt is " + ids.length
                    + " tokens and the model's context (max_position_embeddings in " + modelDir.resolve("config.json")
                    + ") is " + context + (room > 0 ? ", so at most " + room + " new tokens" : ", which the prompt already fills"));
        }
        // One batched pass for all samples, each with its own sampler, so sample i is the same alone or among others.
        List<SampledGeneration.Sample> drawn = SampledGeneration.generate(model, List.of(ids), tok.endTokenIds(),
                new SampledGeneration.Settings(samples, temperature, topP, maxNew, seed, batchSize));
        ObjectMapper json = new ObjectMapper();
        for (SampledGeneration.Sample d : drawn) {
            String text = tok.decode(stripEnd(d.tokens(), tok.endTokenIds()));
            ObjectNode o = json.createObjectNode();
            o.put("sample", d.sampleIndex());
            o.put("seed", seed);
            o.put("temperature", temperature);
            o.put("top_p", topP);
            o.put("text", text);
            if (hooked != null) {
                o.set("hooks", hooked);
            }
            System.out.println(o);
        }
        return 0;
    }

    private static int[] stripEnd(int[] ids, int[] ends) {
        if (ids.length > 0) {
            int last = ids[ids.length - 1];
            for (int e : ends) {
                if (e == last) {
                    return Arrays.copyOf(ids, ids.length - 1);
                }
            }
        }
        return ids;
    }

    // ---------------------------------------------------------------------------------------------
    // merge

    @Command(name = "merge", mixinStandardHelpOptions = true, sortOptions = false,
            header = "fold an adapter into its base model and save a plain model",
            description = "lora4j merge: fold a PEFT adapter into its base model and save a plain model.")
    static final class Merge implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @Mixin
        RunConfig.ConfigOption config;
        @Option(names = "--model", paramLabel = "DIR", description = "the base model, Hugging Face layout (required)")
        Path model;
        @Option(names = "--adapter", paramLabel = "DIR", description = "the PEFT adapter (required)")
        Path adapter;
        @Option(names = "--out", paramLabel = "DIR", description = "the merged model (config.json, model.safetensors, tokenizer.json); new or empty, never the base model's directory; lora4j_merge.json is written last, so a directory without it is an unfinished merge (required)")
        Path out;
        @Option(names = "--overwrite", description = "replace an earlier merge (or run) in --out")
        boolean overwrite;

        @Override
        public Integer call() throws IOException {
            return merge(this);
        }
    }

    static int merge(Merge m) throws IOException {
        Path modelDir = Cli.required(m.model, "--model");
        String adapterDir = Cli.required(m.adapter, "--adapter").toString();
        Path out = Cli.required(m.out, "--out");
        try (RunDirectory dir = RunDirectory.open(out, m.overwrite ? RunDirectory.Mode.OVERWRITE : RunDirectory.Mode.NEW,
                List.of(new RunDirectory.Input("--model", modelDir), new RunDirectory.Input("--adapter", m.adapter)),
                false)) {
            return RunConfig.recorded(m.spec, m.config.file, out, () -> merge(modelDir, adapterDir, out));
        }
    }

    private static int merge(Path modelDir, String adapterDir, Path out) throws IOException {
        DecoderModel model = loadWithAdapter(modelDir, adapterDir);
        int merged;
        try {
            merged = new PeftModel(model).mergeAdapter();   // all or nothing: a non-finite adapter changes no weight
        } catch (IllegalStateException e) {
            throw new IllegalArgumentException(Path.of(adapterDir).resolve(PeftAdapters.WEIGHTS_FILE) + ": "
                    + e.getMessage() + "; nothing was merged", e);
        }
        try {
            model.save(out);   // writes the base weights, which now hold the adapter; adapters themselves are not saved
        } catch (IOException e) {
            throw new IOException(out + ": writing the merged model: " + Main.message(e), e);
        }
        copyTokenizer(modelDir, out);
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("merged_layers", merged);
        o.put("out", out.toAbsolutePath().toString());
        o.put("adapter", adapterDir);
        o.put("base_model", modelDir.toString());
        Path record = out.resolve("lora4j_merge.json");
        try {
            AtomicFiles.writeString(record, o.toPrettyString());   // last, and whole: the merge is complete
        } catch (IOException e) {
            throw new IOException(record + ": " + Main.message(e), e);
        }
        System.out.println(o);
        return 0;
    }
}

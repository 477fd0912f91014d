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

/** The subcommands of the {@code lora4j} command line. Each records its config and seed next to its outputs. */
final class Commands {
    private Commands() {
    }

    // ---------------------------------------------------------------------------------------------
    // Shared training options

    static final String TRAIN_OPTIONS = """
              --optimizer adamw|sgd   (default adamw)
              --lr X                  peak learning rate (default %s)
              --schedule constant|linear|cosine   (default linear)
              --warmup-steps N        (default 0)
              --weight-decay X        decoupled weight decay (default 0)
              --max-grad-norm X       clip the global gradient norm; 0 = off (default 1.0)
              --batch-size N          sequences per micro-batch (default 8)
              --grad-accum N          micro-batches per step (default 1)
              --max-steps N           optimizer steps; 0 = run --epochs (default 0)
              --epochs N              (default %d)
              --seed N                data order, initialisation, dropout (default 0)
              --max-length N          tokens per sequence (default %d)
              --overflow truncate|refuse   over-long examples (default truncate, counted and logged)
              --packed                pack examples into full rows instead of padding each
              --eval-fraction X       held-out share of the data (default %s; 0 allowed)
              --eval-every N          evaluate every N steps and at the end (default 50; 0 = end only)
              --snapshot-every N      save every adapter's A and B every N steps (default 0 = never)
              --checkpoint-every N    (default 50; 0 = end only)
              --keep-checkpoints N    (default 2)
              --early-stop-loss X --early-stop-steps N   stop when the loss stays under X for N steps
              --out DIR               where everything is written (required); must be empty or new,
                                      and neither inside nor holding an input (--model, --data, ...)
              --resume DIR            continue the run in --out from its newest readable checkpoint (DIR
                                      is --out, or a checkpoint); only --max-steps and --epochs may
                                      change, so a finished run can be made longer
              --overwrite             delete what an earlier run left in --out and start again
              --quiet                 no progress display (it is a line every 10%% or 30 s when not a terminal)
            """;

    static TrainConfig trainConfig(Args a, LoraConfig lora, double defaultLr, int defaultEpochs,
                                   double defaultEvalFraction, boolean packedByDefault) {
        TrainConfig d = TrainConfig.defaults();   // each flag's default is the library's
        return TrainConfig.builder()
                .lora(lora)
                .optimizer(Optimizer.Kind.parse(a.value("--optimizer", d.optimizer().name().toLowerCase(java.util.Locale.ROOT))))
                .lr(a.doubleValue("--lr", defaultLr))
                .schedule(LrSchedule.Kind.parse(a.value("--schedule", d.schedule().name().toLowerCase(java.util.Locale.ROOT))))
                .warmupSteps(a.intValue("--warmup-steps", d.warmupSteps(), 0))
                .weightDecay(a.doubleValue("--weight-decay", d.weightDecay()))
                .maxGradNorm(a.doubleValue("--max-grad-norm", d.maxGradNorm()))
                .batchSize(a.intValue("--batch-size", d.batchSize(), 1))
                .gradAccum(a.intValue("--grad-accum", d.gradAccum(), 1))
                .maxSteps(a.intValue("--max-steps", d.maxSteps(), 0))
                .epochs(a.intValue("--epochs", defaultEpochs, 1))
                .seed(a.longValue("--seed", d.seed()))
                .maxLength(a.intValue("--max-length", d.maxLength(), 2))
                .overflow(Dataset.Overflow.parse(a.value("--overflow", d.overflow().name().toLowerCase(java.util.Locale.ROOT))))
                .packed(a.flag("--packed") || packedByDefault)
                .evalFraction(a.doubleValue("--eval-fraction", defaultEvalFraction))
                .evalEvery(a.intValue("--eval-every", d.evalEvery(), 0))
                .snapshotEvery(a.intValue("--snapshot-every", d.snapshotEvery(), 0))
                .checkpointEvery(a.intValue("--checkpoint-every", d.checkpointEvery(), 0))
                .keepCheckpoints(a.intValue("--keep-checkpoints", d.keepCheckpoints(), 1))
                .earlyStopLoss(a.doubleValue("--early-stop-loss", d.earlyStopLoss()))
                .earlyStopSteps(a.intValue("--early-stop-steps", d.earlyStopSteps(), 0))
                .build();
    }

    static final java.util.Set<String> TRAIN_FLAGS = java.util.Set.of("--packed", "--full", "--rslora", "--quiet",
            "--overwrite");

    /**
     * Opens --out for a training run (see {@link RunDirectory}): --resume continues the run in it,
     * --overwrite clears it, otherwise it must be empty or new. A --resume naming another directory
     * (a checkpoint copied from elsewhere) is one more input the output must not overlap.
     */
    static RunDirectory openOut(Path out, String resume, boolean overwrite, List<RunDirectory.Input> inputs)
            throws IOException {
        if (resume != null && overwrite) {
            throw new IllegalArgumentException("--resume continues the run in --out, --overwrite deletes it: give one");
        }
        List<RunDirectory.Input> all = new ArrayList<>(inputs);
        if (resume != null && !RunDirectory.isWithin(Path.of(resume), out)) {
            all.add(new RunDirectory.Input("--resume", Path.of(resume)));
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
                                              String resume, boolean quiet, Map<String, Object> provenance) throws IOException {
        Dataset[] split = all.split(config.evalFraction(), config.seed());
        int pad = tok.specialTokenId("<|endoftext|>").orElse(0);
        Trainer trainer = new Trainer(model, config, split[0], split[1], pad, out, provenance);
        if (quiet) {
            trainer.setProgress(false);
        }
        if (resume != null) {
            trainer.resumeFrom(Path.of(resume));
        }
        Trainer.Result r = trainer.run();
        System.out.println(summary(r, trainer.runId(), out));
        return r;
    }

    // ---------------------------------------------------------------------------------------------
    // pretrain

    static final String PRETRAIN_HELP = """
            lora4j pretrain: train a small Llama-style model from scratch and save it in Hugging Face layout
              --data FILE             a .jsonl file of {"text": ...} lines, or a plain text file (one
                                      example per paragraph); default: the built-in corpus
              --hidden-size N --layers N --heads N --kv-heads N --intermediate-size N
                                      model shape (default 64, 2, 4, 2, 176)
            """ + TRAIN_OPTIONS.formatted("3e-3", 3, 256, "0.05");

    static int pretrain(Args a) throws IOException {
        Path out = Path.of(a.required("--out"));
        ByteTokenizer tok = new ByteTokenizer();
        int hidden = a.intValue("--hidden-size", 64, 1);
        ModelConfig mc = ModelConfig.llama(tok.vocabSize(), hidden, a.intValue("--intermediate-size", 176, 1),
                a.intValue("--layers", 2, 1), a.intValue("--heads", 4, 1), a.intValue("--kv-heads", 2, 1));
        TrainConfig config = trainConfig(a, null, 3e-3, 3, 0.05, true);
        String data = a.value("--data", null);
        String resume = a.value("--resume", null);
        boolean overwrite = a.flag("--overwrite");
        boolean quiet = a.flag("--quiet");
        a.rejectUnknown();
        try (RunDirectory dir = openOut(out, resume, overwrite,
                List.of(new RunDirectory.Input("--data", data == null ? null : Path.of(data))))) {
            return pretrain(out, tok, mc, config, data, resume, quiet);
        }
    }

    private static int pretrain(Path out, ByteTokenizer tok, ModelConfig mc, TrainConfig config, String data,
                                String resume, boolean quiet) throws IOException {
        mc = mc.withMaxPositionEmbeddings(Math.max(2048, config.maxLength()))
                .withSpecialTokens(-1, List.of(tok.specialTokenId("<|endoftext|>").getAsInt()));
        Dataset all = loadCorpus(data, tok, config);
        DecoderModel model = DecoderModel.randomInit(mc, config.seed());
        model.setFullFinetune(true);
        Map<String, Object> prov = provenance("pretrain", data == null ? "built-in corpus" : data, null);
        Trainer.Result r = runTraining(model, tok, config, all, out, resume, quiet, prov);
        if (!r.alreadyComplete()) {
            try {
                tok.save(out);   // the model directory is complete: config.json, model.safetensors, tokenizer.json
            } catch (IOException e) {
                throw new IOException(out.resolve("tokenizer.json") + ": " + Main.message(e), e);
            }
        }
        return 0;
    }

    /** Packing splits a long document across rows, so only padded training needs a length limit. */
    static Dataset limitUnlessPacked(Dataset d, TrainConfig config) {
        return config.packed() ? d : d.limit(config.maxLength(), config.overflow());
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
            return limitUnlessPacked(Dataset.fromTexts(Path.of("built-in-corpus"), paragraphs, tok), config);
        }
        Path file = Path.of(data);
        // A user's file is read by the library, whose errors name the file, line and byte offset (not UTF-8, a directory).
        return limitUnlessPacked(data.endsWith(".jsonl") ? Dataset.load(file, tok) : Dataset.loadText(file, tok), config);
    }

    // ---------------------------------------------------------------------------------------------
    // sft

    static final String SFT_HELP = """
            lora4j sft: fine-tune a model on a JSONL file, with LoRA adapters or all parameters
              --model DIR             Hugging Face layout: config.json, *.safetensors, tokenizer.json
              --data FILE.jsonl       {"messages": [...]} (loss on assistant tokens) or {"text": ...} lines
              --full                  train every parameter instead of adapters
              --lora-rank N           (default 8)
              --lora-alpha X          (default 16)
              --lora-dropout X        (default 0)
              --rslora                scale by alpha/sqrt(rank)
              --target-modules a,b    (default %s)
              --layers 2,24           layers_to_transform (default all)
              --init default|gaussian|pissa|random   (default default: A Kaiming-uniform, B zero)
              --init-adapter DIR      start from this PEFT adapter (its own r, alpha, targets) instead
            """.formatted(String.join(",", LoraConfig.DEFAULT_TARGET_MODULES)) + TRAIN_OPTIONS.formatted("2e-4", 1, 256, "0.1");

    static int sft(Args a) throws IOException {
        Path modelDir = Path.of(a.required("--model"));
        Path data = Path.of(a.required("--data"));
        Path out = Path.of(a.required("--out"));
        boolean full = a.flag("--full");
        String initAdapter = a.value("--init-adapter", null);
        PeftAdapter start = null;
        if (initAdapter != null) {
            for (String o : List.of("--lora-rank", "--lora-alpha", "--rslora", "--target-modules", "--layers", "--init")) {
                if (a.has(o) || a.flag(o)) {
                    throw new IllegalArgumentException(o + " conflicts with --init-adapter, which brings its own config");
                }
            }
            if (full) {
                throw new IllegalArgumentException("--init-adapter trains an adapter; it cannot go with --full");
            }
            start = PeftAdapters.load(Path.of(initAdapter));
        }
        LoraConfig lora = full ? null : start != null
                ? start.config().withDropout(a.doubleValue("--lora-dropout", 0))
                : new LoraConfig(
                a.intValue("--lora-rank", 8), a.doubleValue("--lora-alpha", 16), a.doubleValue("--lora-dropout", 0),
                a.flag("--rslora"), parseInit(a.value("--init", "default")),
                List.of(a.nonBlank("--target-modules", String.join(",", LoraConfig.DEFAULT_TARGET_MODULES),
                        "module names like q_proj,v_proj").split(",")),
                parseInts(a.nonBlank("--layers", "", "layer numbers like 0,3")));
        TrainConfig config = trainConfig(a, lora, full ? 1e-5 : 2e-4, 1, 0.1, false);
        String resume = a.value("--resume", null);
        boolean overwrite = a.flag("--overwrite");
        boolean quiet = a.flag("--quiet");
        a.rejectUnknown();
        try (RunDirectory dir = openOut(out, resume, overwrite, List.of(new RunDirectory.Input("--model", modelDir),
                new RunDirectory.Input("--data", data),
                new RunDirectory.Input("--init-adapter", initAdapter == null ? null : Path.of(initAdapter))))) {
            return sft(modelDir, data, out, full, initAdapter, start, lora, config, resume, quiet);
        }
    }

    private static int sft(Path modelDir, Path data, Path out, boolean full, String initAdapter, PeftAdapter start,
                           LoraConfig lora, TrainConfig config, String resume, boolean quiet) throws IOException {
        Tokenizer tok = Tokenizers.load(modelDir);
        Dataset all = limitUnlessPacked(Dataset.load(data, tok), config);
        DecoderModel model = DecoderModel.load(modelDir);
        if (full) {
            model.setFullFinetune(true);
        } else if (start != null) {
            PeftAdapter withDropout = new PeftAdapter(lora, start.baseModelNameOrPath(), start.loraA(), start.loraB());
            new PeftModel(model).loadAdapter(withDropout, PeftModel.DEFAULT_ADAPTER);
        } else {
            new PeftModel(model).addAdapter(PeftModel.DEFAULT_ADAPTER, lora, config.seed());
        }
        Map<String, Object> prov = provenance("sft", data.toString(), modelDir.toString());
        if (initAdapter != null) {
            prov.put("init_adapter", initAdapter);
        }
        Trainer.Result r = runTraining(model, tok, config, all, out, resume, quiet, prov);
        if (full && !r.alreadyComplete()) {
            copyTokenizer(modelDir, out);
        }
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

    private static List<Integer> parseInts(String s) {
        List<Integer> out = new ArrayList<>();
        for (String p : s.split(",")) {
            if (!p.isBlank()) {
                try {
                    out.add(Integer.parseInt(p.trim()));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("--layers must be integers separated by commas, got '" + s + "'");
                }
            }
        }
        return out;
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

    static final String LOSS_HELP = """
            lora4j loss: the mean next-token loss of a model on a JSONL file, as one JSON line
              --model DIR             Hugging Face layout model directory
              --adapter DIR           a PEFT adapter to apply (optional)
              --data FILE.jsonl       chat lines score assistant tokens, text lines every token
              --batch-size N          sequences per forward (default 8; does not change the result)
            """ + HookOptions.HELP + """
            Each line is a separate sequence and no sequence is truncated; the result averages over
            every scored token of the file: {"loss": ..., "tokens": ...}.
            """;

    static int loss(Args a) throws IOException {
        Path modelDir = Path.of(a.required("--model"));
        Path data = Path.of(a.required("--data"));
        String adapter = a.value("--adapter", null);
        int batchSize = a.intValue("--batch-size", 8, 1);
        HookOptions hooks = HookOptions.parse(a);
        a.rejectUnknown();
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

    static final String GENERATE_HELP = """
            lora4j generate: answer a prompt with a model and an optional adapter
              --model DIR             Hugging Face layout model directory
              --adapter DIR           a PEFT adapter (optional)
              --prompt TEXT           the user message (default "Hello")
              --system TEXT           an optional system message
              --raw                   continue the prompt text as is, without the chat template
              --max-new-tokens N      (default 64)
              --temperature X         0 = greedy (default 1.0)
              --top-p X               nucleus sampling (default 1.0)
              --seed N                sample i is drawn with a seed made from (N, 0, i), as lora4j eval does (default 0)
              --samples N             how many answers (default 1)
              --batch-size N          answers generated together (default 16; does not change them)
              --adapter-scale X       multiply every adapter's B at inference (default 1)
            """ + HookOptions.HELP;

    static int generate(Args a) throws IOException {
        Path modelDir = Path.of(a.required("--model"));
        String adapter = a.value("--adapter", null);
        String prompt = a.value("--prompt", "Hello");
        String system = a.value("--system", null);
        boolean raw = a.flag("--raw");
        int maxNew = a.intValue("--max-new-tokens", 64, 1);
        double temperature = a.doubleValue("--temperature", 1.0);
        double topP = a.doubleValue("--top-p", 1.0);
        long seed = a.longValue("--seed", 0);
        int samples = a.intValue("--samples", 1, 1);
        int batchSize = a.intValue("--batch-size", 16, 1);
        double scale = a.doubleValue("--adapter-scale", 1.0);
        HookOptions hooks = HookOptions.parse(a);
        a.rejectUnknown();
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

    static final String MERGE_HELP = """
            lora4j merge: fold a PEFT adapter into its base model and save a plain model
              --model DIR             the base model (Hugging Face layout)
              --adapter DIR           the PEFT adapter
              --out DIR               the merged model (config.json, model.safetensors, tokenizer.json); new
                                      or empty, never the base model's directory; lora4j_merge.json is
                                      written last, so a directory without it is an unfinished merge
              --overwrite             replace an earlier merge (or run) in --out
            """;

    static int merge(Args a) throws IOException {
        Path modelDir = Path.of(a.required("--model"));
        String adapterDir = a.required("--adapter");
        Path out = Path.of(a.required("--out"));
        boolean overwrite = a.flag("--overwrite");
        a.rejectUnknown();
        try (RunDirectory dir = RunDirectory.open(out, overwrite ? RunDirectory.Mode.OVERWRITE : RunDirectory.Mode.NEW,
                List.of(new RunDirectory.Input("--model", modelDir), new RunDirectory.Input("--adapter", Path.of(adapterDir))),
                false)) {
            return merge(modelDir, adapterDir, out);
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

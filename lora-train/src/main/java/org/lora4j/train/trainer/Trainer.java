package org.lora4j.train.trainer;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.core.AtomicFiles;
import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraConfig;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.data.Batch;
import org.lora4j.train.data.Batcher;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.optim.Optimizer;
import org.lora4j.train.optim.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One trainer for adapter SFT and full-parameter fine-tuning (and pre-training, which is full
 * training on text lines). The loop has fixed phases, in one place ({@link #run}):
 * learning rate, forward and backward over the accumulated micro-batches, checks for NaN, clipping,
 * optimizer step, early stopping, evaluation, logging, callbacks (snapshots, samples), checkpoint,
 * progress.
 *
 * <h2>Use from code</h2>
 * <pre>{@code
 *   Dataset data = Dataset.load(file, tokenizer);
 *   Trainer trainer = new Trainer(model, tokenizer, config, data, out);
 *   trainer.addCallback(SamplingCallback.builder(tokenizer).prompt("Hi?").every(50).build());
 *   Trainer.Result r = trainer.run();
 * }</pre>
 * The training config carries the LoRA config; the trainer attaches it (or sets full fine-tuning),
 * pads with the tokenizer's pad token and applies the config's length limit to the data.
 * docs/library.md walks through a whole program.
 *
 * <h2>Output directory</h2>
 * <pre>
 *   run.json                 run id, config, seed, data hash, library version, base model; "final" once done
 *   adapter_config.json      the final adapter (PEFT)            } or config.json + model.safetensors
 *   adapter_model.safetensors                                    } + the tokenizer's files, for a full fine-tune
 *   metrics.jsonl            one line per step
 *   samples.jsonl            what a {@link SamplingCallback} sampled, when one is added
 *   snapshots/step-N.safetensors   every adapter's A and B (PEFT key names), when asked
 *   checkpoints/step-N/      the newest checkpoints
 * </pre>
 * The command line opens the directory through {@link RunDirectory} (one run per directory, a lock,
 * no overlap with the inputs); the trainer itself refuses to start a new run over another's files.
 *
 * <h2>Run id</h2>
 * Every metrics line, snapshot, checkpoint and final adapter carries the run id ({@link #runId()}): a
 * digest of everything that decides the training (the config without its length, the data, the base
 * and starting weights). Resume and {@link org.lora4j.train.analysis.Snapshots} refuse files of
 * another run. The same command reproduces the same id, so a rerun or a resumed run writes the same
 * bytes as an uninterrupted one; a run made longer ({@code max_steps}, {@code epochs}) keeps its id.
 *
 * <h2>Resume</h2>
 * {@link #resumeFrom} continues the newest readable checkpoint; only {@code max_steps} and
 * {@code epochs} may differ from the checkpoint's config. Resuming a finished run changes nothing;
 * with a larger {@code max_steps} or {@code epochs} it trains on from where it ended, with the
 * learning-rate schedule recomputed for the new length (with a constant schedule the result is the
 * longer run's, bit for bit).
 *
 * <h2>Reproducibility</h2>
 * The data order depends only on (seed, epoch) and dropout masks only on (seed, step, micro-batch,
 * layer), so the state to resume is the step, the data position, the weights and the optimizer's
 * moments; a resumed run continues bit for bit.
 */
public final class Trainer {
    private static final Logger log = LoggerFactory.getLogger(Trainer.class);

    private final DecoderModel model;
    private final PeftModel peft;     // the adapter verbs over model
    private final TrainConfig config;
    private final Dataset train;
    private final Dataset eval;
    private final Tokenizer tokenizer;
    private final Path out;
    private final Map<String, Object> provenance;   // run.json's record of where the run came from
    private final Batcher trainBatches;
    private final Batcher evalBatches;
    private final Optimizer optimizer;
    private final List<Parameter> params;
    private final LrSchedule schedule;
    private final int totalSteps;
    private final CheckpointStore checkpoints;
    private final String baseFingerprint;
    private final String runId;
    private final Map<String, LoraAdapter> adapters;   // the active adapter per adapted module; fixed for the run
    private int startStep;                             // where this process began (0, or the resumed step)
    private Progress progress = Progress.of(ProgressDisplay.LINES, System.err);
    private final List<TrainerCallback> callbacks = new ArrayList<>();
    private final AdapterSnapshots snapshots;

    // Position: optimizer steps done, and the next micro-batch to read.
    private int step;
    private int epoch;
    private int batchInEpoch;
    private int earlyStopCount;
    private List<Batch> epochBatches;
    private String lastCheckpoint;
    private boolean resumed;          // resumeFrom succeeded: the directory holds this run's earlier steps
    private double resumedLoss = Double.NaN;   // the last logged losses up to the resumed step, for a run already at its end
    private Double resumedEvalLoss;

    /**
     * A trainer that holds out {@code config.evalFraction()} of {@code data} for evaluation (a seeded
     * split, {@code config.seed()}), as the command line does: the one call for a single data file.
     *
     * @see #Trainer(DecoderModel, Tokenizer, TrainConfig, Dataset, Dataset, Path)
     */
    public Trainer(DecoderModel model, Tokenizer tokenizer, TrainConfig config, Dataset data, Path outputDir) {
        this(model, tokenizer, config, split(data, config), outputDir, true);
    }

    private Trainer(DecoderModel model, Tokenizer tokenizer, TrainConfig config, Dataset[] trainAndEval, Path outputDir,
                    boolean split) {
        this(model, tokenizer, config, trainAndEval[0], trainAndEval[1], outputDir);
    }

    private static Dataset[] split(Dataset data, TrainConfig config) {
        Objects.requireNonNull(data, "data");
        return data.split(Objects.requireNonNull(config, "config").evalFraction(), config.seed());
    }

    /**
     * A trainer for {@code config}'s run of {@code model} on {@code train}, as Hugging Face's
     * {@code Trainer(model, args, train_dataset, eval_dataset, processing_class)}.
     *
     * <p>The model is prepared here, from the config alone, so the LoRA config is given in one place:
     * <ul>
     *   <li>an adapter run ({@code config.lora()} not null) on a model without adapters attaches
     *       {@code config.lora()} as adapter "default", seeded from {@code config.seed()}; a model that
     *       already has adapters (loaded with {@link PeftModel#loadAdapter} to train on, as
     *       {@code --init-adapter} does) must carry that same config on exactly the layers it targets,
     *       else the constructor refuses, naming the difference;</li>
     *   <li>a full fine-tune ({@code config.lora()} null) turns on {@link DecoderModel#setFullFinetune}
     *       and refuses a model with adapters.</li>
     * </ul>
     * Unpacked examples longer than {@code config.maxLength()} are truncated or refused as
     * {@code config.overflow()} says (packed data is cut into rows of that length anyway), so data may
     * be loaded at full length. Padding uses {@link Tokenizer#padTokenId()}, and a full fine-tune's
     * model directory gets the tokenizer's files beside the weights.
     *
     * @param tokenizer the model's tokenizer (Hugging Face's {@code processing_class})
     * @param eval      held-out data, or null (or empty) for none
     * @param outputDir where the run writes (see the class comment); must not hold another run
     */
    public Trainer(DecoderModel model, Tokenizer tokenizer, TrainConfig config, Dataset train, Dataset eval,
                   Path outputDir) {
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.peft = new PeftModel(model);
        this.config = Objects.requireNonNull(config, "config");
        this.train = fitToLength(Objects.requireNonNull(train, "train"), config);
        this.eval = eval == null || eval.size() == 0 ? null : fitToLength(eval, config);
        this.out = Objects.requireNonNull(outputDir, "outputDir");
        if (tokenizer.vocabSize() > model.config().vocabSize()) {
            throw new IllegalArgumentException("the tokenizer has " + tokenizer.vocabSize() + " tokens, the model's"
                    + " embedding only " + model.config().vocabSize() + " rows: not this model's tokenizer");
        }
        prepareModel(model, peft, config);
        int padId = tokenizer.padTokenId();
        this.provenance = new LinkedHashMap<>();
        provenance.put("base_model", model.nameOrPath());
        provenance.put("data", this.train.file() == null ? null : this.train.file().toString());
        provenance.put("data_format", this.train.format().toString());   // as detected from the file's first line
        provenance.put("chat_template", tokenizer.chatTemplate().name());
        provenance.put("lora4j_version", Version.get());
        this.trainBatches = new Batcher(this.train, config.batchSize(), config.maxLength(), config.packed(), padId, config.seed());
        this.evalBatches = this.eval == null ? null
                : new Batcher(this.eval, config.batchSize(), config.maxLength(), config.packed(), padId, config.seed());
        this.params = model.trainableParameters();
        if (params.isEmpty()) {
            throw new IllegalArgumentException("the model has nothing to train: its adapters are disabled or merged");
        }
        this.optimizer = Optimizer.create(config.optimizer(), params, config.weightDecay());
        int perEpoch = trainBatches.epoch(0).size();
        this.totalSteps = config.maxSteps() > 0 ? config.maxSteps()
                : Math.max(1, (int) Math.ceil((double) config.epochs() * perEpoch / config.gradAccum()));
        if (config.warmupSteps() >= totalSteps) {
            throw new IllegalArgumentException(TrainConfig.warmupTooLong(config.warmupSteps(), totalSteps)
                    + " (" + config.epochs() + " epoch(s) of " + perEpoch + " batches)");
        }
        this.schedule = new LrSchedule(config.schedule(), config.lr(), config.warmupSteps(), totalSteps);
        this.checkpoints = new CheckpointStore(out.resolve("checkpoints"), config.keepCheckpoints());
        this.baseFingerprint = fingerprint(model.parameters());
        Map<String, INDArray> start = new LinkedHashMap<>();
        params.forEach(p -> start.put(p.name(), p.value()));
        this.runId = runId(config, this.train, this.eval, baseFingerprint, fingerprint(start));
        this.adapters = peft.activeAdapters();   // callbacks see it; they must not change it
        this.snapshots = config.snapshotEvery() > 0
                ? new AdapterSnapshots(out.resolve("snapshots"), config.snapshotEvery(), config.seed(), runId) : null;
        if (snapshots != null) {
            callbacks.add(snapshots);
        }
    }

    /**
     * Attaches {@code config.lora()} when the model has no adapter, or checks that the adapters it has
     * are that config's; a full fine-tune switches the base weights to trainable.
     */
    private static void prepareModel(DecoderModel model, PeftModel peft, TrainConfig config) {
        Map<String, LoraAdapter> present = peft.activeAdapters();
        if (config.isFull()) {
            if (!present.isEmpty()) {
                throw new IllegalArgumentException("the training config is a full fine-tune (lora null), but the model"
                        + " has adapters on " + present.size() + " layers (" + present.keySet().iterator().next()
                        + ", ...): merge them (PeftModel.mergeAdapter) or train an adapter");
            }
            model.setFullFinetune(true);
            return;
        }
        if (model.isFullFinetune()) {
            throw new IllegalArgumentException("the training config trains an adapter (lora " + config.lora()
                    + "), but the model is set to full fine-tuning: call setFullFinetune(false) or use a full config");
        }
        if (present.isEmpty()) {
            peft.addAdapter(PeftModel.DEFAULT_ADAPTER, config.lora(), config.seed());
            return;
        }
        List<String> differences = new ArrayList<>();
        LoraConfig want = config.lora();
        for (Map.Entry<String, LoraAdapter> e : present.entrySet()) {
            LoraConfig have = e.getValue().config();
            if (!have.equals(want)) {
                differences.add(e.getKey() + " has adapter '" + e.getValue().name() + "' with "
                        + String.join(", ", loraDifferences(have, want)));
                break;   // one layer says it; the rest usually differ the same way
            }
        }
        for (String module : model.linearLayers().keySet()) {
            boolean targeted = want.matches(module);
            if (targeted != present.containsKey(module)) {
                differences.add(module + (targeted ? " is targeted but has no adapter" : " has an adapter but is not targeted"));
            }
        }
        if (!differences.isEmpty()) {
            throw new IllegalArgumentException("the model's adapters are not the training config's lora (give the LoRA"
                    + " config once: in TrainConfig, and let the Trainer attach it):\n  " + String.join("\n  ", differences));
        }
    }

    /** Each differing field under PEFT's name, "name: model's value, config's value". */
    private static List<String> loraDifferences(LoraConfig have, LoraConfig want) {
        List<String> d = new ArrayList<>();
        differ(d, "r", have.rank(), want.rank());
        differ(d, "lora_alpha", have.alpha(), want.alpha());
        differ(d, "lora_dropout", have.dropout(), want.dropout());
        differ(d, "use_rslora", have.useRslora(), want.useRslora());
        differ(d, "init_lora_weights", have.init().peftName(), want.init().peftName());
        differ(d, "target_modules", have.targetModules(), want.targetModules());
        differ(d, "layers_to_transform", have.layersToTransform(), want.layersToTransform());
        return d;
    }

    private static void differ(List<String> out, String name, Object have, Object want) {
        if (!Objects.equals(have, want)) {
            out.add(name + " " + have + " (the config says " + want + ")");
        }
    }

    /**
     * Unpacked data at {@code config.maxLength()}: longer examples truncated or refused as
     * {@code config.overflow()} says. Packed data is left whole: the batcher cuts it into rows.
     */
    private static Dataset fitToLength(Dataset data, TrainConfig config) {
        if (config.packed()) {
            return data;
        }
        return data.limit(config.maxLength(), config.overflow());
    }

    /**
     * Records one more fact about the run in run.json and its checkpoints (the command that started it,
     * a starting adapter); the trainer records the base model, the data file and the library version.
     */
    public void putProvenance(String key, Object value) {
        provenance.put(Objects.requireNonNull(key, "key"), value);
    }

    /** Adds a callback run at step 0 and after every step (see {@link TrainerCallback}). */
    public void addCallback(TrainerCallback callback) {
        callbacks.add(Objects.requireNonNull(callback, "callback"));
    }

    /**
     * A summary of the starting weights (per tensor: its sum and norm), so a resume onto another base
     * model is refused: an adapter checkpoint holds only the adapter, the base comes from --model.
     */
    private static String fingerprint(Map<String, INDArray> tensors) {
        long h = 1125899906842597L;
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            h = 31 * h + e.getKey().hashCode();
            h = 31 * h + Double.hashCode(e.getValue().sumNumber().doubleValue());
            h = 31 * h + Double.hashCode(e.getValue().norm2Number().doubleValue());
        }
        return Long.toHexString(h);
    }

    /** The run id: 16 hex digits of SHA-256 over what decides the training, except its length. */
    private static String runId(TrainConfig config, Dataset train, Dataset eval, String base, String start) {
        String identity = config.identity() + "\n" + train.sha256() + "\n" + (eval == null ? "-" : eval.sha256())
                + "\n" + base + "\n" + start;
        try {
            byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(identity.getBytes(StandardCharsets.UTF_8));
            return java.util.HexFormat.of().formatHex(d, 0, 8);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JVM has SHA-256", e);
        }
    }

    /** This run's id, written into every metrics line, snapshot, checkpoint and run.json. */
    public String runId() {
        return runId;
    }

    /**
     * Turns the progress display off (tests, --quiet) or back on as {@link ProgressDisplay#LINES}, the
     * default: plain lines on stderr, which an IDE's console shows as they come.
     */
    public void setProgress(boolean enabled) {
        setProgress(enabled ? ProgressDisplay.LINES : ProgressDisplay.OFF);
    }

    /** Chooses the progress display, on stderr (see {@link ProgressDisplay}). */
    public void setProgress(ProgressDisplay display) {
        setProgress(display, System.err);
    }

    /** Chooses the progress display and the stream it writes to (a log, or a captured stream in a test). */
    public void setProgress(ProgressDisplay display, java.io.PrintStream stream) {
        this.progress = Progress.of(display, stream);
    }

    public int totalSteps() {
        return totalSteps;
    }

    /**
     * The result of a run.
     *
     * @param lastLoss        the training loss of the last step (NaN when no step was ever logged)
     * @param lastEvalLoss    the newest held-out loss, or null when there is none
     * @param alreadyComplete the run had already finished: {@link #run} wrote nothing
     */
    public record Result(int steps, double lastLoss, Double lastEvalLoss, boolean stoppedEarly, boolean alreadyComplete) {
    }

    /**
     * Continues from a checkpoint: a checkpoint directory, or the newest readable one of a run's
     * output directory. Refuses a checkpoint of another run (config, data, base model, starting
     * weights) naming what differs; only {@code max_steps} and {@code epochs} may change. Resuming
     * this run's own output directory before its first checkpoint starts it again from step 0.
     */
    public void resumeFrom(Path checkpointOrRun) throws IOException {
        CheckpointStore.Loaded c;
        try {
            c = CheckpointStore.loadNewest(checkpointOrRun);
        } catch (CheckpointStore.NoCheckpointException e) {
            if (!RunDirectory.real(checkpointOrRun).equals(RunDirectory.real(out))) {
                throw e;
            }
            checkRunJson();
            log.warn("{}: no checkpoint to resume from yet (a run stopped before its first); starting from step 0", out);
            truncateMetrics(0);
            resumed = true;
            return;
        }
        Path path = c.path();
        Path stateFile = path.resolve(CheckpointStore.STATE);
        CheckpointStore.State st = c.state();
        List<String> differences = new ArrayList<>();
        for (String d : st.config().differences(config)) {
            if (TrainConfig.RESUMABLE_CHANGES.stream().noneMatch(f -> d.startsWith(f + ":"))) {
                differences.add(d);
            }
        }
        if (!differences.isEmpty()) {
            throw new IllegalArgumentException(stateFile + ": cannot resume with a different config (only "
                    + String.join(" and ", TrainConfig.RESUMABLE_CHANGES) + " may change):\n  "
                    + String.join("\n  ", differences));
        }
        if (!baseFingerprint.equals(st.baseFingerprint())) {
            throw new IllegalArgumentException(stateFile + ": the checkpoint was made on a different base model (fingerprint "
                    + st.baseFingerprint() + ", this model's is " + baseFingerprint + ")");
        }
        if (!st.trainSha256().equals(train.sha256())) {
            throw new IllegalArgumentException(stateFile + ": the checkpoint was trained on data with sha256 "
                    + st.trainSha256() + ", this data has " + train.sha256());
        }
        if (!runId.equals(st.runId())) {
            throw new IllegalArgumentException(stateFile + ": the checkpoint belongs to run " + st.runId() + ", this is run "
                    + runId + " (same config, data and base model, so the starting weights differ: another --init-adapter?)");
        }
        checkRunJson();   // after the checkpoint's own checks, which say more precisely what differs
        if (st.step() > totalSteps) {
            throw new IllegalArgumentException(stateFile + ": the checkpoint is at step " + st.step() + ", past this run's "
                    + totalSteps + " steps; resume with max_steps (or epochs) reaching at least step " + st.step());
        }
        for (Parameter p : params) {
            INDArray v = c.weights().get(p.name());
            if (v == null) {
                throw new IllegalArgumentException(path.resolve(CheckpointStore.WEIGHTS) + ": no tensor '" + p.name() + "'");
            }
            if (v.length() != p.value().length()) {
                throw new IllegalArgumentException(path.resolve(CheckpointStore.WEIGHTS) + ": '" + p.name() + "' has "
                        + v.length() + " values, the model's has " + p.value().length());
            }
            p.value().assign(v.reshape(p.value().shape()));
        }
        if (c.weights().size() != params.size()) {
            throw new IllegalArgumentException(path.resolve(CheckpointStore.WEIGHTS) + ": holds " + c.weights().size()
                    + " tensors, the model trains " + params.size());
        }
        optimizer.loadState(c.optimizer(), st.optimizerSteps());
        step = c.step();
        startStep = step;
        epoch = st.epoch();
        batchInEpoch = st.batchInEpoch();
        earlyStopCount = st.earlyStopCount();
        epochBatches = null;
        lastCheckpoint = path.toString();
        truncateMetrics(step);
        resumed = true;
        log.info("resumed from {} at step {} of {} (epoch {}, batch {})", path, step, totalSteps, epoch, batchInEpoch);
    }

    /** A run.json of another run in the output directory: its files must not be mixed with this run's. */
    private void checkRunJson() throws IOException {
        Path f = out.resolve(RunDirectory.RUN_JSON);
        if (!Files.exists(f)) {
            return;
        }
        JsonNode r;
        try {
            r = new ObjectMapper().readTree(f.toFile());
        } catch (IOException e) {
            throw new IOException(f + ": cannot be read (" + e.getMessage() + ")", e);
        }
        String id = r == null ? "" : r.path("run_id").asText("");
        if (!runId.equals(id)) {
            throw new IllegalArgumentException(f + ": this directory holds run " + (id.isEmpty() ? "(no run id)" : id)
                    + ", and this command is run " + runId + " (another config, data or model); runs do not mix:"
                    + " use another output directory, or start again there with --overwrite");
        }
    }

    private boolean earlyStopReached() {
        return config.earlyStopSteps() > 0 && earlyStopCount >= config.earlyStopSteps();
    }

    /** The run.json "final" record, when the final output of this run at this step is already written. */
    private JsonNode finished() throws IOException {
        Path f = out.resolve(RunDirectory.RUN_JSON);
        if (!Files.exists(f)) {
            return null;
        }
        JsonNode fin = new ObjectMapper().readTree(f.toFile()).get("final");
        boolean output = Files.exists(out.resolve(config.isFull() ? "model.safetensors" : "adapter_model.safetensors"));
        return fin != null && fin.path("step").asInt(-1) == step && output ? fin : null;
    }

    /** Runs to the end (or an early stop) and writes the final adapter or model at the top of the output. */
    public Result run() throws IOException {
        boolean atEnd = step >= totalSteps || earlyStopReached();
        JsonNode done = resumed && atEnd ? finished() : null;
        if (done != null) {
            // Finished before: nothing is rewritten, not even run.json.
            log.info("{}: the run is complete ({} of {} steps{}); nothing to do. To train on, resume with a larger"
                    + " --max-steps or --epochs.", out, step, totalSteps, earlyStopReached() ? ", stopped early" : "");
            JsonNode ev = done.get("eval_loss");
            return new Result(step, done.path("loss").asDouble(Double.NaN), ev == null || ev.isNull() ? null : ev.asDouble(),
                    done.path("stopped_early").asBoolean(), true);
        }
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw naming(out, e);
        }
        if (!resumed) {
            refuseAnotherRunsFiles();
        }
        writeRunJson(null);
        log.info("{}", peft.trainableParameters());   // PEFT's print_trainable_parameters line
        model.setTraining(true);
        if (step == 0) {
            callBack(new TrainerState(0, totalSteps, epoch, false, Double.NaN, Double.NaN, Double.NaN, null, 0,
                    Double.NaN, model, adapters, runId, out));
        }
        double loss = resumedLoss;
        Double evalLoss = resumedEvalLoss;
        boolean stopped = earlyStopReached();
        while (step < totalSteps && !stopped) {
            double lr = schedule.at(step);
            long t0 = System.nanoTime();
            // Forward and backward over the micro-batches; the loss is the mean over all their targets.
            List<Batch> micro = new ArrayList<>();
            for (int m = 0; m < config.gradAccum(); m++) {
                micro.add(nextBatch());
            }
            int targets = micro.stream().mapToInt(Batch::targets).sum();
            optimizer.zeroGrad();
            double lossSum = 0;
            long tokens = 0;
            for (int m = 0; m < micro.size(); m++) {
                Batch b = micro.get(m);
                if (b.targets() == 0) {
                    continue;
                }
                seedDropout(step, m);
                double l = model.loss(b.tokens(), b.lossMask(), b.batch(), b.seq());
                model.backward((double) b.targets() / targets);
                lossSum += l * b.targets();
                tokens += b.tokens().length;
            }
            loss = lossSum / targets;
            int stepNumber = step + 1;
            if (!Double.isFinite(loss)) {
                throw new TrainingDivergedException(stepNumber, "the training loss", loss, lastCheckpoint);
            }
            double gradNorm = optimizer.clipGradNorm(config.maxGradNorm());
            if (!Double.isFinite(gradNorm)) {
                throw new TrainingDivergedException(stepNumber, "the gradient norm", gradNorm, lastCheckpoint);
            }
            optimizer.step(lr);
            step = stepNumber;
            double seconds = (System.nanoTime() - t0) / 1e9;
            double tokensPerSecond = tokens / seconds;

            boolean last = step == totalSteps;
            if (config.earlyStopSteps() > 0) {
                earlyStopCount = loss < config.earlyStopLoss() ? earlyStopCount + 1 : 0;
                if (earlyStopCount >= config.earlyStopSteps()) {
                    stopped = true;
                    log.info("early stop at step {}: training loss under {} for {} steps", step,
                            config.earlyStopLoss(), earlyStopCount);
                }
            }
            Double stepEval = null;
            if (evalBatches != null && ((config.evalEvery() > 0 && step % config.evalEvery() == 0) || last || stopped)) {
                stepEval = evaluate();
                evalLoss = stepEval;
            }
            appendMetrics(step, lr, loss, gradNorm, tokensPerSecond, stepEval);
            callBack(new TrainerState(step, totalSteps, epoch, last || stopped, loss, lr, gradNorm, stepEval, tokens,
                    tokensPerSecond, model, adapters, runId, out));
            if ((config.checkpointEvery() > 0 && step % config.checkpointEvery() == 0) || last || stopped) {
                lastCheckpoint = checkpoint().toString();
            }
            progress.update(step, totalSteps, startStep, loss, tokensPerSecond);
        }
        model.setTraining(false);
        saveFinal();
        ObjectNode fin = new ObjectMapper().createObjectNode();
        fin.put("step", step);
        putFinite(fin, "loss", loss);
        putFinite(fin, "eval_loss", evalLoss);
        fin.put("stopped_early", stopped);
        writeRunJson(fin);   // last: a run.json with "final" means every output of the run is in place
        return new Result(step, loss, evalLoss, stopped, false);
    }

    private void callBack(TrainerState state) throws IOException {
        for (TrainerCallback c : callbacks) {
            c.onStep(state);
        }
        model.setTraining(true);   // a callback that generated may have left it in evaluation mode
    }

    /** A new run (not resumed) never appends to another run's metrics or mixes in its checkpoints. */
    private void refuseAnotherRunsFiles() throws IOException {
        for (String name : List.of(RunDirectory.RUN_JSON, "metrics.jsonl", "checkpoints", "snapshots")) {
            if (Files.exists(out.resolve(name))) {
                throw new IllegalArgumentException(out + " already holds a run (" + name + "); resume it (resumeFrom),"
                        + " or train into an empty directory");
            }
        }
    }

    private static void putFinite(ObjectNode o, String key, Double v) {
        if (v == null || !Double.isFinite(v)) {
            o.putNull(key);
        } else {
            o.put(key, v);
        }
    }

    private Batch nextBatch() {
        if (epochBatches == null) {
            epochBatches = trainBatches.epoch(epoch);
        }
        if (batchInEpoch >= epochBatches.size()) {
            epoch++;
            batchInEpoch = 0;
            epochBatches = trainBatches.epoch(epoch);
        }
        return epochBatches.get(batchInEpoch++);
    }

    /** Each layer's dropout stream depends only on (seed, step, micro-batch, layer): resumable without RNG state. */
    private void seedDropout(int atStep, int micro) {
        peft.setDropoutSeeds(layer -> config.seed() * 0x9E3779B97F4A7C15L + atStep * 1_000_003L + micro * 10_007L + layer);
    }

    /** Mean next-token loss over every target of the held-out set, without dropout. */
    public double evaluate() {
        if (evalBatches == null) {
            throw new IllegalStateException("no held-out data");
        }
        model.setTraining(false);
        double sum = 0;
        long n = 0;
        for (Batch b : evalBatches.inOrder()) {
            if (b.targets() == 0) {
                continue;
            }
            sum += model.loss(b.tokens(), b.lossMask(), b.batch(), b.seq()) * b.targets();
            n += b.targets();
        }
        model.setTraining(true);
        return sum / n;
    }

    // ---------------------------------------------------------------------------------------------
    // Outputs

    private ObjectNode runInfo() {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode o = mapper.createObjectNode();
        o.put("run_id", runId);
        o.put("library_version", Version.get());
        o.put("seed", config.seed());
        o.set("config", config.toJson());
        o.put("train_sha256", train.sha256());
        o.put("train_examples", train.size());
        o.put("eval_examples", eval == null ? 0 : eval.size());
        o.put("total_steps", totalSteps);
        o.put("base_fingerprint", baseFingerprint);
        o.set("provenance", mapper.valueToTree(provenance));
        return o;
    }

    private void writeRunJson(ObjectNode fin) throws IOException {
        ObjectNode o = runInfo();
        if (fin != null) {
            o.set("final", fin);
        }
        writeAtomically(out.resolve(RunDirectory.RUN_JSON), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(o));
    }

    private Path checkpoint() throws IOException {
        ObjectNode st = runInfo();
        st.put("epoch", epoch);
        st.put("batch_in_epoch", batchInEpoch);
        st.put("early_stop_count", earlyStopCount);
        st.put("optimizer_steps", optimizer.stepCount());
        Map<String, INDArray> weights = new LinkedHashMap<>();
        for (Parameter p : params) {
            weights.put(p.name(), p.value());
        }
        return checkpoints.write(step, st, weights, optimizer.state());
    }

    private void saveFinal() throws IOException {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("lora4j_version", Version.get());
        meta.put("lora4j_seed", Long.toString(config.seed()));
        meta.put("lora4j_steps", Integer.toString(step));
        meta.put("lora4j_train_sha256", train.sha256());
        meta.put("lora4j_run_id", runId);
        try {
            if (config.isFull()) {
                model.save(out);
                saveTokenizer();
            } else {
                peft.savePretrained(out, model.nameOrPath(), meta);
            }
        } catch (IOException e) {
            throw naming(out, e);
        }
        log.info("wrote the final {} to {}", config.isFull() ? "model" : "adapter", out.toAbsolutePath());
    }

    /**
     * The tokenizer's files beside a full fine-tune's weights (tokenizer.json and tokenizer_config.json
     * with the chat template and special tokens), so the directory loads as a model on its own.
     */
    private void saveTokenizer() throws IOException {
        try {
            tokenizer.save(out);
        } catch (UnsupportedOperationException e) {
            log.warn("{}: {}; the model directory has no tokenizer", out, e.getMessage());
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Metrics

    private void appendMetrics(int atStep, double lr, double loss, double gradNorm, double tokensPerSecond,
                               Double evalLoss) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode o = mapper.createObjectNode();
        o.put("step", atStep);
        o.put("run_id", runId);
        o.put("lr", lr);
        o.put("loss", loss);
        o.put("grad_norm", gradNorm);
        o.put("tokens_per_s", tokensPerSecond);
        if (evalLoss != null) {
            o.put("eval_loss", evalLoss);
        }
        if (!adapters.isEmpty()) {
            ObjectNode norms = o.putObject("adapters");
            for (Map.Entry<String, LoraAdapter> e : adapters.entrySet()) {
                ObjectNode n = norms.putObject(e.getKey());
                n.put("a_norm", norm(e.getValue().a()));
                n.put("b_norm", norm(e.getValue().b()));
            }
        }
        Path f = out.resolve("metrics.jsonl");
        try (BufferedWriter w = Files.newBufferedWriter(f, StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            w.write(mapper.writeValueAsString(o));
            w.write('\n');
        } catch (IOException e) {
            throw naming(f, e);
        }
    }

    /**
     * The Frobenius norm as a Java loop: an ND4J reduction here would wake OpenMP's threads at every
     * step's metrics line (docs/performance.md, the wait policy).
     */
    private static double norm(INDArray a) {
        if (!NativeBuffer.isContiguousF(a)) {
            return a.norm2Number().doubleValue();
        }
        NativeBuffer b = NativeBuffer.of(a);
        double[] chunk = new double[(int) Math.min(a.length(), 4096)];
        double sum = 0;
        for (long at = 0; at < a.length(); at += chunk.length) {
            int m = (int) Math.min(chunk.length, a.length() - at);
            b.read(at, chunk, 0, m);
            for (int i = 0; i < m; i++) {
                sum += chunk[i] * chunk[i];
            }
        }
        return Math.sqrt(sum);
    }

    /**
     * After a crash the metrics may run past the checkpoint; those steps are about to be redone. A
     * line of another run is refused (naming the file and line): this file must hold one run.
     */
    private void truncateMetrics(int upToStep) throws IOException {
        Path f = out.resolve("metrics.jsonl");
        if (!Files.exists(f)) {
            return;
        }
        ObjectMapper mapper = new ObjectMapper();
        StringBuilder kept = new StringBuilder();
        int keptLines = 0;
        List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.isBlank()) {
                continue;
            }
            JsonNode n;
            try {
                n = mapper.readTree(line);
            } catch (IOException e) {
                break;   // a line cut by the crash: everything after it is gone too
            }
            String id = n.path("run_id").asText("");
            if (!runId.equals(id)) {
                throw new IllegalArgumentException(f + " line " + (i + 1) + ": a metrics line of run "
                        + (id.isEmpty() ? "(no run id)" : id) + ", this is run " + runId + "; runs do not mix");
            }
            if (n.path("step").asInt() <= upToStep) {
                kept.append(line).append('\n');
                keptLines++;
                resumedLoss = n.path("loss").asDouble(Double.NaN);
                if (n.hasNonNull("eval_loss")) {
                    resumedEvalLoss = n.get("eval_loss").asDouble();
                }
            }
        }
        if (keptLines < lines.size()) {
            writeAtomically(f, kept.toString());   // only when something is dropped: a finished run is left as it is
        }
    }

    /** Replaces the file atomically ({@link AtomicFiles}), naming it in any error. */
    private static void writeAtomically(Path file, String text) throws IOException {
        try {
            AtomicFiles.writeString(file, text);
        } catch (IOException e) {
            throw naming(file, e);
        }
    }

    /**
     * The exception, with the path in front when its message does not name it already: a full disk
     * says only "No space left on device".
     */
    static IOException naming(Path path, IOException e) {
        String m = e.getMessage();
        if (m != null && m.contains(path.toString())) {
            return e;
        }
        if (e instanceof java.nio.file.FileSystemException fse && fse.getFile() != null && m != null
                && m.contains(fse.getFile())) {
            return e;   // names the file that failed, inside path
        }
        return new IOException(path + ": " + (m == null ? e.getClass().getSimpleName() : m), e);
    }
}

package org.lora4j.train.trainer;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraLinear;
import org.lora4j.core.PeftAdapters;
import org.lora4j.train.DecoderModel;
import org.lora4j.train.data.Batch;
import org.lora4j.train.data.Batcher;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.optim.Optimizer;
import org.lora4j.train.optim.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.node.ObjectNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
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
 * optimizer step, logging, snapshots, evaluation, early stopping, checkpoint.
 *
 * <h2>Output directory</h2>
 * <pre>
 *   run.json                 config, seed, data hash, library version, base model
 *   adapter_config.json      the final adapter (PEFT)            } or config.json + model.safetensors
 *   adapter_model.safetensors                                    } for a full fine-tune
 *   metrics.jsonl            one line per step
 *   snapshots/step-N.safetensors   every adapter's A and B (PEFT key names), when asked
 *   checkpoints/step-N/      the newest checkpoints
 * </pre>
 *
 * <h2>Reproducibility</h2>
 * The data order depends only on (seed, epoch) and dropout masks only on (seed, step, micro-batch,
 * layer), so the state to resume is the step, the data position, the weights and the optimizer's
 * moments; a resumed run continues bit for bit.
 */
public final class Trainer {
    private static final Logger log = LoggerFactory.getLogger(Trainer.class);
    static final String ADAPTER_NAME = "default";

    private final DecoderModel model;
    private final TrainConfig config;
    private final Dataset train;
    private final Dataset eval;
    private final int padId;
    private final Path out;
    private final Map<String, Object> provenance;
    private final Batcher trainBatches;
    private final Batcher evalBatches;
    private final Optimizer optimizer;
    private final List<Parameter> params;
    private final LrSchedule schedule;
    private final int totalSteps;
    private final CheckpointStore checkpoints;
    private final String baseFingerprint;
    private final Map<String, LoraAdapter> adapters;   // the active adapter per adapted module; fixed for the run
    private int startStep;                             // where this process began (0, or the resumed step)
    private Progress progress = Progress.forConsole();
    private final List<TrainerCallback> callbacks = new ArrayList<>();
    private final AdapterSnapshots snapshots;

    // Position: optimizer steps done, and the next micro-batch to read.
    private int step;
    private int epoch;
    private int batchInEpoch;
    private int earlyStopCount;
    private List<Batch> epochBatches;
    private String lastCheckpoint;

    /**
     * @param model      with its adapter attached (SFT) or set to full fine-tuning, as {@code config} says
     * @param provenance recorded in run.json and checkpoints (base model path, data file, command)
     */
    public Trainer(DecoderModel model, TrainConfig config, Dataset train, Dataset eval, int padId, Path out,
                   Map<String, Object> provenance) {
        this.model = Objects.requireNonNull(model, "model");
        this.config = Objects.requireNonNull(config, "config");
        this.train = Objects.requireNonNull(train, "train");
        this.eval = eval == null || eval.size() == 0 ? null : eval;
        this.padId = padId;
        this.out = out;
        this.provenance = new LinkedHashMap<>(provenance);
        this.trainBatches = new Batcher(train, config.batchSize(), config.maxLength(), config.packed(), padId, config.seed());
        this.evalBatches = this.eval == null ? null
                : new Batcher(this.eval, config.batchSize(), config.maxLength(), config.packed(), padId, config.seed());
        this.params = model.trainableParameters();
        if (params.isEmpty()) {
            throw new IllegalArgumentException("the model has nothing to train: attach an adapter or set full fine-tuning");
        }
        this.optimizer = Optimizer.create(config.optimizer(), params, config.weightDecay());
        int perEpoch = trainBatches.epoch(0).size();
        this.totalSteps = config.maxSteps() > 0 ? config.maxSteps()
                : Math.max(1, (int) Math.ceil((double) config.epochs() * perEpoch / config.gradAccum()));
        this.schedule = new LrSchedule(config.schedule(), config.lr(), config.warmupSteps(), totalSteps);
        this.checkpoints = new CheckpointStore(out.resolve("checkpoints"), config.keepCheckpoints());
        this.baseFingerprint = fingerprint(model);
        this.adapters = activeAdapters(model);
        this.snapshots = config.snapshotEvery() > 0
                ? new AdapterSnapshots(out.resolve("snapshots"), config.snapshotEvery(), config.seed()) : null;
        if (snapshots != null) {
            callbacks.add(snapshots);
        }
    }

    /** Adds a callback run at step 0 and after every step (see {@link TrainerCallback}). */
    public void addCallback(TrainerCallback callback) {
        callbacks.add(Objects.requireNonNull(callback, "callback"));
    }

    /**
     * A summary of the starting weights (per tensor: its sum and norm), so a resume onto another base
     * model is refused: an adapter checkpoint holds only the adapter, the base comes from --model.
     */
    private static String fingerprint(DecoderModel model) {
        long h = 1125899906842597L;
        for (Map.Entry<String, INDArray> e : model.parameters().entrySet()) {
            h = 31 * h + e.getKey().hashCode();
            h = 31 * h + Double.hashCode(e.getValue().sumNumber().doubleValue());
            h = 31 * h + Double.hashCode(e.getValue().norm2Number().doubleValue());
        }
        return Long.toHexString(h);
    }

    /** Replaces the console progress display (tests silence it). */
    public void setProgress(boolean enabled) {
        this.progress = new Progress(System.err, enabled);
    }

    public int totalSteps() {
        return totalSteps;
    }

    /** The result of a run. */
    public record Result(int steps, double lastLoss, Double lastEvalLoss, boolean stoppedEarly) {
    }

    /** Continues from a checkpoint (a checkpoint directory or a run's output directory). */
    public void resumeFrom(Path checkpointOrRun) throws IOException {
        Path path = CheckpointStore.resolve(checkpointOrRun);
        CheckpointStore.Loaded c = CheckpointStore.read(path);
        JsonNode st = c.state();
        TrainConfig saved = TrainConfig.fromJson(st.get("config"));
        if (!saved.equals(config)) {
            throw new IllegalArgumentException(path + ": the checkpoint was made with a different config:\n  saved "
                    + saved.toJson() + "\n  now   " + config.toJson());
        }
        if (!baseFingerprint.equals(st.path("base_fingerprint").asText())) {
            throw new IllegalArgumentException(path + ": the checkpoint was made on a different base model (fingerprint "
                    + st.path("base_fingerprint").asText() + ", this model's is " + baseFingerprint + ")");
        }
        String savedHash = st.path("train_sha256").asText();
        if (!savedHash.equals(train.sha256())) {
            throw new IllegalArgumentException(path + ": the checkpoint was trained on data with sha256 " + savedHash
                    + ", this data has " + train.sha256());
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
        optimizer.loadState(c.optimizer(), st.get("optimizer_steps").asInt());
        step = c.step();
        startStep = step;
        epoch = st.get("epoch").asInt();
        batchInEpoch = st.get("batch_in_epoch").asInt();
        earlyStopCount = st.get("early_stop_count").asInt();
        epochBatches = null;
        lastCheckpoint = path.toString();
        truncateMetrics(step);
        log.info("resumed from {} at step {} (epoch {}, batch {})", path, step, epoch, batchInEpoch);
    }

    /** Runs to the end (or an early stop) and writes the final adapter or model at the top of the output. */
    public Result run() throws IOException {
        Files.createDirectories(out);
        writeRunJson();
        model.setTraining(true);
        if (step == 0) {
            for (TrainerCallback c : callbacks) {
                c.onStep(0, adapters, Double.NaN);
            }
        }
        double loss = Double.NaN;
        Double evalLoss = null;
        boolean stopped = false;
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
            for (TrainerCallback c : callbacks) {
                c.onStep(step, adapters, loss);
            }
            if (snapshots != null && (last || stopped) && step % config.snapshotEvery() != 0) {
                snapshots.save(step, adapters);   // the end state, whatever the interval
            }
            if ((config.checkpointEvery() > 0 && step % config.checkpointEvery() == 0) || last || stopped) {
                lastCheckpoint = checkpoint().toString();
            }
            progress.update(step, totalSteps, startStep, loss, tokensPerSecond);
        }
        model.setTraining(false);
        saveFinal();
        return new Result(step, loss, evalLoss, stopped);
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
        int i = 0;
        for (LoraLinear l : model.linearLayers().values()) {
            long s = config.seed() * 0x9E3779B97F4A7C15L + atStep * 1_000_003L + micro * 10_007L + i++;
            l.setDropoutSeed(s);
        }
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

    private static Map<String, LoraAdapter> activeAdapters(DecoderModel model) {
        Map<String, LoraAdapter> m = new LinkedHashMap<>();
        for (Map.Entry<String, LoraLinear> e : model.linearLayers().entrySet()) {
            LoraAdapter a = e.getValue().activeAdapter();
            if (a != null) {
                m.put(e.getKey(), a);
            }
        }
        return java.util.Collections.unmodifiableMap(m);   // callbacks see it; they must not change it
    }

    private ObjectNode runInfo() {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode o = mapper.createObjectNode();
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

    private void writeRunJson() throws IOException {
        writeAtomically(out.resolve("run.json"),
                new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(runInfo()));
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
        if (config.isFull()) {
            model.save(out);
        } else {
            Object base = provenance.getOrDefault("base_model", "");
            PeftAdapters.save(out, config.lora(), adapters, String.valueOf(base), meta);
        }
        log.info("wrote the final {} to {}", config.isFull() ? "model" : "adapter", out.toAbsolutePath());
    }

    // ---------------------------------------------------------------------------------------------
    // Metrics

    private void appendMetrics(int atStep, double lr, double loss, double gradNorm, double tokensPerSecond,
                               Double evalLoss) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode o = mapper.createObjectNode();
        o.put("step", atStep);
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
                n.put("a_norm", e.getValue().a().norm2Number().doubleValue());
                n.put("b_norm", e.getValue().b().norm2Number().doubleValue());
            }
        }
        try (BufferedWriter w = Files.newBufferedWriter(out.resolve("metrics.jsonl"), StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            w.write(mapper.writeValueAsString(o));
            w.write('\n');
        }
    }

    /** After a crash the metrics may run past the checkpoint; those steps are about to be redone. */
    private void truncateMetrics(int upToStep) throws IOException {
        Path f = out.resolve("metrics.jsonl");
        if (!Files.exists(f)) {
            return;
        }
        ObjectMapper mapper = new ObjectMapper();
        StringBuilder kept = new StringBuilder();
        for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode n;
            try {
                n = mapper.readTree(line);
            } catch (IOException e) {
                break;   // a line cut by the crash: everything after it is gone too
            }
            if (n.path("step").asInt() <= upToStep) {
                kept.append(line).append('\n');
            }
        }
        writeAtomically(f, kept.toString());
    }

    private static void writeAtomically(Path file, String text) throws IOException {
        Path tmp = Files.createTempFile(file.getParent(), "." + file.getFileName(), ".tmp");
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}

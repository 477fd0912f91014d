package org.lora4j.train.trainer;

import org.lora4j.core.LoraConfig;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.optim.Optimizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Everything that decides a training run, so a run is reproduced from this and its data. Written
 * next to every output and into every checkpoint.
 *
 * @param lora            the adapter to train, or null for full-parameter fine-tuning; the {@link Trainer}
 *                        attaches it to the model (seeded from {@code seed}), so it is given only here
 * @param optimizer       AdamW or SGD
 * @param lr              peak learning rate
 * @param schedule        constant, linear or cosine (Hugging Face's formulas)
 * @param warmupSteps     linear warm-up steps; fewer than the run's steps
 * @param weightDecay     decoupled weight decay
 * @param maxGradNorm     clip the global gradient norm to this; 0 turns clipping off
 * @param batchSize       sequences per micro-batch
 * @param gradAccum       micro-batches per optimizer step; the loss is the mean over all their targets
 * @param maxSteps        optimizer steps; 0 means {@code epochs} worth
 * @param epochs          passes over the training data when maxSteps is 0 (>= 1 always)
 * @param seed            data order, adapter initialisation, dropout
 * @param maxLength       tokens per sequence (longer examples are truncated or refused)
 * @param overflow        what to do with longer examples
 * @param packed          pack examples into full rows instead of padding each
 * @param evalFraction    share of the data held out for evaluation
 * @param evalEvery       evaluate every this many steps (and at the end); 0: only at the end
 * @param snapshotEvery   save every adapter's A and B every this many steps; 0: never
 * @param checkpointEvery checkpoint every this many steps (and at the end); 0: only at the end
 * @param keepCheckpoints how many checkpoints to keep (the newest)
 * @param earlyStopLoss   stop once the training loss stays below this ...
 * @param earlyStopSteps  ... for this many consecutive steps; 0 turns early stopping off
 */
public record TrainConfig(LoraConfig lora, Optimizer.Kind optimizer, double lr, LrSchedule.Kind schedule,
                          int warmupSteps, double weightDecay, double maxGradNorm, int batchSize, int gradAccum,
                          int maxSteps, int epochs, long seed, int maxLength, Dataset.Overflow overflow,
                          boolean packed, double evalFraction, int evalEvery, int snapshotEvery,
                          int checkpointEvery, int keepCheckpoints, double earlyStopLoss, int earlyStopSteps) {

    public TrainConfig {
        Objects.requireNonNull(optimizer, "optimizer");
        Objects.requireNonNull(schedule, "schedule");
        Objects.requireNonNull(overflow, "overflow");
        // Messages use the field names of toJson() (run.json, trainer_state.json); the command line's
        // flags are the same names with dashes (max_steps is --max-steps).
        positive("batch_size", batchSize);
        positive("grad_accum", gradAccum);
        positive("max_length", maxLength);
        positive("keep_checkpoints", keepCheckpoints);
        positive("epochs", epochs);
        nonNegative("max_steps", maxSteps, " (0: run epochs)");
        nonNegative("warmup_steps", warmupSteps, "");
        nonNegative("eval_every", evalEvery, " (0: only at the end)");
        nonNegative("snapshot_every", snapshotEvery, " (0: never)");
        nonNegative("checkpoint_every", checkpointEvery, " (0: only at the end)");
        nonNegative("early_stop_steps", earlyStopSteps, " (0: no early stopping)");
        if (maxSteps > 0 && warmupSteps >= maxSteps) {
            throw new IllegalArgumentException(warmupTooLong(warmupSteps, maxSteps));
        }
        if (!(lr >= 0) || !Double.isFinite(lr)) {
            throw new IllegalArgumentException("lr must be finite and >= 0, got " + lr);
        }
        if (!(maxGradNorm >= 0) || Double.isInfinite(maxGradNorm)) {
            throw new IllegalArgumentException("max_grad_norm must be finite and >= 0 (0: no clipping), got " + maxGradNorm);
        }
        if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
            throw new IllegalArgumentException("weight_decay must be finite and >= 0, got " + weightDecay);
        }
        if (!(evalFraction >= 0 && evalFraction < 1)) {
            throw new IllegalArgumentException("eval_fraction must be in [0, 1), got " + evalFraction);
        }
        if (Double.isNaN(earlyStopLoss)) {
            throw new IllegalArgumentException("early_stop_loss must be a number, got NaN");
        }
    }

    /** Warm-up as long as the run never reaches the peak rate, and its first step runs at rate 0. */
    static String warmupTooLong(int warmupSteps, int totalSteps) {
        return "warmup_steps " + warmupSteps + " must be less than the run's " + totalSteps
                + " steps: the learning rate rises from 0 over the warm-up, so the whole run would train below lr";
    }

    private static void positive(String what, int v) {
        if (v < 1) {
            throw new IllegalArgumentException(what + " must be >= 1, got " + v);
        }
    }

    private static void nonNegative(String what, int v, String meaning) {
        if (v < 0) {
            throw new IllegalArgumentException(what + " must be >= 0" + meaning + ", got " + v);
        }
    }

    /** The fields a resume may change: a finished or running run may be made longer, nothing else. */
    public static final List<String> RESUMABLE_CHANGES = List.of("max_steps", "epochs");

    /**
     * The fields of {@link #toJson()} whose values differ, each as {@code "name: this -> other"}
     * ({@code "lr: 0.001 -> 0.002"}, {@code "lora.r: 4 -> 8"}), in toJson's order.
     */
    public List<String> differences(TrainConfig other) {
        List<String> out = new ArrayList<>();
        diff("", toJson(), other.toJson(), out);
        return out;
    }

    private static void diff(String prefix, JsonNode a, JsonNode b, List<String> out) {
        if (a != null && b != null && a.isObject() && b.isObject()) {
            java.util.LinkedHashSet<String> names = new java.util.LinkedHashSet<>();
            a.fieldNames().forEachRemaining(names::add);
            b.fieldNames().forEachRemaining(names::add);
            for (String n : names) {
                diff(prefix + n + ".", a.get(n), b.get(n), out);
            }
        } else if (!Objects.equals(a, b)) {
            out.add(prefix.substring(0, prefix.length() - 1) + ": " + a + " -> " + b);
        }
    }

    /** The config without the fields a resume may change: what identifies a run (see {@link Trainer#runId()}). */
    ObjectNode identity() {
        ObjectNode o = toJson();
        RESUMABLE_CHANGES.forEach(o::remove);
        return o;
    }

    /** The defaults of {@link Builder}, as a config. */
    public static TrainConfig defaults() {
        return builder().build();
    }

    /** A builder holding the defaults (see {@link Builder}). */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding this config's values, to make a variation of it. */
    public Builder toBuilder() {
        return new Builder()
                .lora(lora).optimizer(optimizer).lr(lr).schedule(schedule).warmupSteps(warmupSteps)
                .weightDecay(weightDecay).maxGradNorm(maxGradNorm).batchSize(batchSize).gradAccum(gradAccum)
                .maxSteps(maxSteps).epochs(epochs).seed(seed).maxLength(maxLength).overflow(overflow)
                .packed(packed).evalFraction(evalFraction).evalEvery(evalEvery).snapshotEvery(snapshotEvery)
                .checkpointEvery(checkpointEvery).keepCheckpoints(keepCheckpoints).earlyStopLoss(earlyStopLoss)
                .earlyStopSteps(earlyStopSteps);
    }

    /**
     * Builds a {@link TrainConfig} by name. Every field starts at its default, each with its reason
     * below; {@link #build()} validates as the record's constructor does. The defaults are an adapter
     * fine-tune: the common LoRA recipe, batch 8 and one epoch.
     */
    public static final class Builder {
        /** r 8, alpha 16 on every linear layer of the blocks: the common LoRA recipe. */
        private LoraConfig lora = new LoraConfig(8, 16, 0.0, false, LoraConfig.Init.DEFAULT,
                LoraConfig.DEFAULT_TARGET_MODULES, List.of());
        /** AdamW at 2e-4 with linear decay: PEFT's LoRA examples. */
        private Optimizer.Kind optimizer = Optimizer.Kind.ADAMW;
        private double lr = 2e-4;
        private LrSchedule.Kind schedule = LrSchedule.Kind.LINEAR;
        /** No warm-up unless asked (the EM recipe uses 5). */
        private int warmupSteps = 0;
        /** PEFT's LoRA recipes mostly use no weight decay. */
        private double weightDecay = 0.0;
        /** Clip at 1.0, Hugging Face Trainer's default. */
        private double maxGradNorm = 1.0;
        /** Batch 8, no accumulation: fits the small models lora4j trains on a CPU. */
        private int batchSize = 8;
        private int gradAccum = 1;
        /** One epoch, counted in epochs rather than steps. */
        private int maxSteps = 0;
        private int epochs = 1;
        private long seed = 0L;
        /** 256 tokens, truncating longer examples: the chat examples of the EM datasets fit. */
        private int maxLength = 256;
        private Dataset.Overflow overflow = Dataset.Overflow.TRUNCATE;
        private boolean packed = false;
        /** 10% held out, as in the EM runs. */
        private double evalFraction = 0.1;
        /** Evaluate and checkpoint every 50 steps, keep two checkpoints, no snapshots. */
        private int evalEvery = 50;
        private int snapshotEvery = 0;
        private int checkpointEvery = 50;
        private int keepCheckpoints = 2;
        /** No early stopping. */
        private double earlyStopLoss = 0.0;
        private int earlyStopSteps = 0;

        private Builder() {
        }

        /** The adapter to train, or null for full-parameter fine-tuning. */
        public Builder lora(LoraConfig v) {
            lora = v;
            return this;
        }

        /** Full-parameter fine-tuning: no adapter. */
        public Builder full() {
            return lora(null);
        }

        public Builder optimizer(Optimizer.Kind v) {
            optimizer = v;
            return this;
        }

        public Builder lr(double v) {
            lr = v;
            return this;
        }

        public Builder schedule(LrSchedule.Kind v) {
            schedule = v;
            return this;
        }

        public Builder warmupSteps(int v) {
            warmupSteps = v;
            return this;
        }

        public Builder weightDecay(double v) {
            weightDecay = v;
            return this;
        }

        public Builder maxGradNorm(double v) {
            maxGradNorm = v;
            return this;
        }

        public Builder batchSize(int v) {
            batchSize = v;
            return this;
        }

        public Builder gradAccum(int v) {
            gradAccum = v;
            return this;
        }

        public Builder maxSteps(int v) {
            maxSteps = v;
            return this;
        }

        public Builder epochs(int v) {
            epochs = v;
            return this;
        }

        public Builder seed(long v) {
            seed = v;
            return this;
        }

        public Builder maxLength(int v) {
            maxLength = v;
            return this;
        }

        public Builder overflow(Dataset.Overflow v) {
            overflow = v;
            return this;
        }

        public Builder packed(boolean v) {
            packed = v;
            return this;
        }

        public Builder evalFraction(double v) {
            evalFraction = v;
            return this;
        }

        public Builder evalEvery(int v) {
            evalEvery = v;
            return this;
        }

        public Builder snapshotEvery(int v) {
            snapshotEvery = v;
            return this;
        }

        public Builder checkpointEvery(int v) {
            checkpointEvery = v;
            return this;
        }

        public Builder keepCheckpoints(int v) {
            keepCheckpoints = v;
            return this;
        }

        public Builder earlyStopLoss(double v) {
            earlyStopLoss = v;
            return this;
        }

        public Builder earlyStopSteps(int v) {
            earlyStopSteps = v;
            return this;
        }

        /** The config; refused with the record's messages when a value is out of range. */
        public TrainConfig build() {
            return new TrainConfig(lora, optimizer, lr, schedule, warmupSteps, weightDecay, maxGradNorm, batchSize,
                    gradAccum, maxSteps, epochs, seed, maxLength, overflow, packed, evalFraction, evalEvery,
                    snapshotEvery, checkpointEvery, keepCheckpoints, earlyStopLoss, earlyStopSteps);
        }
    }

    public boolean isFull() {
        return lora == null;
    }

    /** The config as JSON, for run.json and checkpoints. */
    public ObjectNode toJson() {
        ObjectMapper m = new ObjectMapper();
        ObjectNode o = m.createObjectNode();
        if (lora == null) {
            o.putNull("lora");
        } else {
            ObjectNode l = o.putObject("lora");
            l.put("r", lora.rank());
            l.put("lora_alpha", lora.alpha());
            l.put("lora_dropout", lora.dropout());
            l.put("use_rslora", lora.useRslora());
            l.put("init_lora_weights", lora.init().peftName());
            ArrayNode t = l.putArray("target_modules");
            lora.targetModules().forEach(t::add);
            ArrayNode layers = l.putArray("layers_to_transform");
            lora.layersToTransform().forEach(layers::add);
        }
        o.put("optimizer", optimizer.name().toLowerCase());
        o.put("lr", lr);
        o.put("schedule", schedule.name().toLowerCase());
        o.put("warmup_steps", warmupSteps);
        o.put("weight_decay", weightDecay);
        o.put("max_grad_norm", maxGradNorm);
        o.put("batch_size", batchSize);
        o.put("grad_accum", gradAccum);
        o.put("max_steps", maxSteps);
        o.put("epochs", epochs);
        o.put("seed", seed);
        o.put("max_length", maxLength);
        o.put("overflow", overflow.name().toLowerCase());
        o.put("packed", packed);
        o.put("eval_fraction", evalFraction);
        o.put("eval_every", evalEvery);
        o.put("snapshot_every", snapshotEvery);
        o.put("checkpoint_every", checkpointEvery);
        o.put("keep_checkpoints", keepCheckpoints);
        o.put("early_stop_loss", earlyStopLoss);
        o.put("early_stop_steps", earlyStopSteps);
        return o;
    }

    /**
     * Reads {@link #toJson()}'s form back. A missing key or a value of the wrong type is an
     * {@link IllegalArgumentException} naming the key, as is a value the constructor refuses.
     */
    public static TrainConfig fromJson(JsonNode o) {
        if (o == null || !o.isObject()) {
            throw new IllegalArgumentException("training config must be a JSON object, got " + (o == null ? "nothing" : o.getNodeType()));
        }
        LoraConfig lora = null;
        JsonNode l = o.get("lora");
        if (l != null && !l.isNull()) {
            if (!l.isObject()) {
                throw new IllegalArgumentException("training config: 'lora' must be an object or null, got " + l.getNodeType());
            }
            List<String> targets = new ArrayList<>();
            for (JsonNode n : array(l, "lora.target_modules")) {
                if (!n.isTextual()) {
                    throw new IllegalArgumentException("training config: 'lora.target_modules' must hold strings, got " + n);
                }
                targets.add(n.asText());
            }
            List<Integer> layers = new ArrayList<>();
            for (JsonNode n : array(l, "lora.layers_to_transform")) {
                if (!n.isInt()) {
                    throw new IllegalArgumentException("training config: 'lora.layers_to_transform' must hold integers, got " + n);
                }
                layers.add(n.asInt());
            }
            lora = new LoraConfig(integer(l, "lora.r"), number(l, "lora.lora_alpha"), number(l, "lora.lora_dropout"),
                    bool(l, "lora.use_rslora"), LoraConfig.Init.fromPeft(text(l, "lora.init_lora_weights")),
                    targets, layers);
        }
        return builder().lora(lora)
                .optimizer(Optimizer.Kind.parse(text(o, "optimizer")))
                .lr(number(o, "lr"))
                .schedule(LrSchedule.Kind.parse(text(o, "schedule")))
                .warmupSteps(integer(o, "warmup_steps"))
                .weightDecay(number(o, "weight_decay"))
                .maxGradNorm(number(o, "max_grad_norm"))
                .batchSize(integer(o, "batch_size"))
                .gradAccum(integer(o, "grad_accum"))
                .maxSteps(integer(o, "max_steps"))
                .epochs(integer(o, "epochs"))
                .seed(req(o, "seed", JsonNode::isIntegralNumber, "an integer").asLong())
                .maxLength(integer(o, "max_length"))
                .overflow(Dataset.Overflow.parse(text(o, "overflow")))
                .packed(bool(o, "packed"))
                .evalFraction(number(o, "eval_fraction"))
                .evalEvery(integer(o, "eval_every"))
                .snapshotEvery(integer(o, "snapshot_every"))
                .checkpointEvery(integer(o, "checkpoint_every"))
                .keepCheckpoints(integer(o, "keep_checkpoints"))
                .earlyStopLoss(number(o, "early_stop_loss"))
                .earlyStopSteps(integer(o, "early_stop_steps"))
                .build();
    }

    private static JsonNode req(JsonNode o, String path, java.util.function.Predicate<JsonNode> ok, String what) {
        String key = path.substring(path.lastIndexOf('.') + 1);
        JsonNode v = o.get(key);
        if (v == null) {
            throw new IllegalArgumentException("training config has no '" + path + "'");
        }
        if (!ok.test(v)) {
            throw new IllegalArgumentException("training config: '" + path + "' must be " + what + ", got " + v);
        }
        return v;
    }

    private static int integer(JsonNode o, String path) {
        return req(o, path, JsonNode::isInt, "an integer").asInt();
    }

    private static double number(JsonNode o, String path) {
        return req(o, path, JsonNode::isNumber, "a number").asDouble();
    }

    private static boolean bool(JsonNode o, String path) {
        return req(o, path, JsonNode::isBoolean, "true or false").asBoolean();
    }

    private static String text(JsonNode o, String path) {
        return req(o, path, JsonNode::isTextual, "a string").asText();
    }

    private static JsonNode array(JsonNode o, String path) {
        return req(o, path, JsonNode::isArray, "an array");
    }
}

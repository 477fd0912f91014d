package org.lora4j.train.trainer;

import org.lora4j.core.LoraConfig;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.optim.Optimizer;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.node.ArrayNode;
import org.nd4j.shade.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Everything that decides a training run, so a run is reproduced from this and its data. Written
 * next to every output and into every checkpoint.
 *
 * @param lora            the adapter to train, or null for full-parameter fine-tuning
 * @param optimizer       AdamW or SGD
 * @param lr              peak learning rate
 * @param schedule        constant, linear or cosine (Hugging Face's formulas)
 * @param warmupSteps     linear warm-up steps
 * @param weightDecay     decoupled weight decay
 * @param maxGradNorm     clip the global gradient norm to this; 0 turns clipping off
 * @param batchSize       sequences per micro-batch
 * @param gradAccum       micro-batches per optimizer step; the loss is the mean over all their targets
 * @param maxSteps        optimizer steps; 0 or less means {@code epochs} worth
 * @param epochs          passes over the training data when maxSteps is not set
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
        positive("batch size", batchSize);
        positive("grad accumulation", gradAccum);
        positive("max length", maxLength);
        positive("keep checkpoints", keepCheckpoints);
        nonNegative("warmup steps", warmupSteps);
        nonNegative("eval every", evalEvery);
        nonNegative("snapshot every", snapshotEvery);
        nonNegative("checkpoint every", checkpointEvery);
        nonNegative("early stop steps", earlyStopSteps);
        if (maxSteps <= 0 && epochs < 1) {
            throw new IllegalArgumentException("set max steps or epochs >= 1, got max steps " + maxSteps + ", epochs " + epochs);
        }
        if (!(lr >= 0) || !Double.isFinite(lr)) {
            throw new IllegalArgumentException("learning rate must be finite and >= 0, got " + lr);
        }
        if (!(maxGradNorm >= 0)) {
            throw new IllegalArgumentException("max grad norm must be >= 0 (0: no clipping), got " + maxGradNorm);
        }
        if (!(weightDecay >= 0)) {
            throw new IllegalArgumentException("weight decay must be >= 0, got " + weightDecay);
        }
        if (!(evalFraction >= 0 && evalFraction < 1)) {
            throw new IllegalArgumentException("eval fraction must be in [0, 1), got " + evalFraction);
        }
    }

    private static void positive(String what, int v) {
        if (v < 1) {
            throw new IllegalArgumentException(what + " must be >= 1, got " + v);
        }
    }

    private static void nonNegative(String what, int v) {
        if (v < 0) {
            throw new IllegalArgumentException(what + " must be >= 0, got " + v);
        }
    }

    /**
     * Defaults for an adapter fine-tune, each with its reason: the common LoRA recipe (r 8, alpha 16
     * on every linear layer of the blocks, AdamW at 2e-4, linear decay), batch 8 and one epoch.
     */
    public static TrainConfig defaults() {
        return new TrainConfig(
                new LoraConfig(8, 16, 0.0, false, LoraConfig.Init.DEFAULT,
                        List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), List.of()),
                Optimizer.Kind.ADAMW, 2e-4, LrSchedule.Kind.LINEAR,
                0,      // warm-up: none unless asked (the EM recipe uses 5)
                0.0,    // weight decay: PEFT's LoRA recipes mostly use none
                1.0,    // clip at 1.0, Hugging Face Trainer's default
                8, 1,
                0, 1,   // one epoch
                0L,
                256, Dataset.Overflow.TRUNCATE, false,
                0.1,    // 10% held out, as in the EM runs
                50, 0, 50, 2,
                0.0, 0);
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

    /** Reads {@link #toJson()}'s form back; a missing key is an error naming it. */
    public static TrainConfig fromJson(JsonNode o) {
        LoraConfig lora = null;
        JsonNode l = o.get("lora");
        if (l != null && !l.isNull()) {
            List<String> targets = new ArrayList<>();
            req(l, "target_modules").forEach(n -> targets.add(n.asText()));
            List<Integer> layers = new ArrayList<>();
            req(l, "layers_to_transform").forEach(n -> layers.add(n.asInt()));
            lora = new LoraConfig(req(l, "r").asInt(), req(l, "lora_alpha").asDouble(), req(l, "lora_dropout").asDouble(),
                    req(l, "use_rslora").asBoolean(), LoraConfig.Init.fromPeft(req(l, "init_lora_weights").asText()),
                    targets, layers);
        }
        return new TrainConfig(lora, Optimizer.Kind.parse(req(o, "optimizer").asText()), req(o, "lr").asDouble(),
                LrSchedule.Kind.parse(req(o, "schedule").asText()), req(o, "warmup_steps").asInt(),
                req(o, "weight_decay").asDouble(), req(o, "max_grad_norm").asDouble(), req(o, "batch_size").asInt(),
                req(o, "grad_accum").asInt(), req(o, "max_steps").asInt(), req(o, "epochs").asInt(),
                req(o, "seed").asLong(), req(o, "max_length").asInt(),
                Dataset.Overflow.parse(req(o, "overflow").asText()), req(o, "packed").asBoolean(),
                req(o, "eval_fraction").asDouble(), req(o, "eval_every").asInt(), req(o, "snapshot_every").asInt(),
                req(o, "checkpoint_every").asInt(), req(o, "keep_checkpoints").asInt(),
                req(o, "early_stop_loss").asDouble(), req(o, "early_stop_steps").asInt());
    }

    private static JsonNode req(JsonNode o, String key) {
        JsonNode v = o.get(key);
        if (v == null) {
            throw new IllegalArgumentException("training config has no '" + key + "'");
        }
        return v;
    }
}

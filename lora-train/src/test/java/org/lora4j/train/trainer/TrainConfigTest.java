package org.lora4j.train.trainer;

import org.junit.jupiter.api.Test;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.optim.Optimizer;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TrainConfigTest {

    private static TrainConfig with(int maxSteps, int epochs, int warmup, int batch) {
        TrainConfig d = TrainConfig.defaults();
        return new TrainConfig(d.lora(), Optimizer.Kind.ADAMW, 2e-4, LrSchedule.Kind.LINEAR, warmup, 0, 1.0, batch, 1,
                maxSteps, epochs, 0L, 256, Dataset.Overflow.TRUNCATE, false, 0.1, 50, 0, 50, 2, 0.0, 0);
    }

    private static String refused(Runnable r) {
        return assertThrows(IllegalArgumentException.class, r::run).getMessage();
    }

    @Test
    void negativeAndZeroCountsAreRefusedNamingTheFieldAndValue() {
        assertEquals("max_steps must be >= 0 (0: run epochs), got -1", refused(() -> with(-1, 1, 0, 8)));
        assertEquals("epochs must be >= 1, got 0", refused(() -> with(10, 0, 0, 8)));
        assertEquals("batch_size must be >= 1, got 0", refused(() -> with(10, 1, 0, 8 * 0)));
        assertEquals("warmup_steps must be >= 0, got -3", refused(() -> with(10, 1, -3, 8)));
        assertEquals("warmup_steps 10 must be less than the run's 10 steps: the learning rate rises from 0 over the"
                + " warm-up, so the whole run would train below lr", refused(() -> with(10, 1, 10, 8)));
        with(10, 1, 9, 8);
        with(0, 3, 500, 8);   // by epochs, the length is checked where the data is known (Trainer)
    }

    @Test
    void differencesNameEachFieldWithBothValues() {
        TrainConfig a = TrainConfig.defaults();
        TrainConfig b = new TrainConfig(a.lora().withDropout(0.05), a.optimizer(), 1e-3, a.schedule(), a.warmupSteps(),
                a.weightDecay(), a.maxGradNorm(), a.batchSize(), a.gradAccum(), 100, a.epochs(), a.seed(), a.maxLength(),
                a.overflow(), a.packed(), a.evalFraction(), a.evalEvery(), a.snapshotEvery(), a.checkpointEvery(),
                a.keepCheckpoints(), a.earlyStopLoss(), a.earlyStopSteps());
        assertEquals(List.of("lora.lora_dropout: 0.0 -> 0.05", "lr: 2.0E-4 -> 0.001", "max_steps: 0 -> 100"), a.differences(b));
        assertEquals(List.of(), a.differences(a));
        assertEquals(List.of("lora: " + a.toJson().get("lora") + " -> null"),
                a.differences(new TrainConfig(null, a.optimizer(), a.lr(), a.schedule(), a.warmupSteps(), a.weightDecay(),
                        a.maxGradNorm(), a.batchSize(), a.gradAccum(), a.maxSteps(), a.epochs(), a.seed(), a.maxLength(),
                        a.overflow(), a.packed(), a.evalFraction(), a.evalEvery(), a.snapshotEvery(), a.checkpointEvery(),
                        a.keepCheckpoints(), a.earlyStopLoss(), a.earlyStopSteps())));
    }

    @Test
    void fromJsonNamesAMissingOrMistypedKey() {
        var o = TrainConfig.defaults().toJson();
        assertEquals(TrainConfig.defaults(), TrainConfig.fromJson(o));
        o.put("lr", "fast");
        assertEquals("training config: 'lr' must be a number, got \"fast\"", refused(() -> TrainConfig.fromJson(o)));
        o.put("lr", 1e-3);
        o.remove("seed");
        assertEquals("training config has no 'seed'", refused(() -> TrainConfig.fromJson(o)));
        o.put("seed", 1);
        ((org.nd4j.shade.jackson.databind.node.ObjectNode) o.get("lora")).put("r", 2.5);
        assertEquals("training config: 'lora.r' must be an integer, got 2.5", refused(() -> TrainConfig.fromJson(o)));
    }
}

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
        return TrainConfig.builder().maxSteps(maxSteps).epochs(epochs).warmupSteps(warmup).batchSize(batch).build();
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
    void builderDefaultsAreTheDocumentedRecipeAndToBuilderRoundTrips() {
        TrainConfig d = TrainConfig.defaults();
        assertEquals(8, d.lora().rank());
        assertEquals(16.0, d.lora().alpha());
        assertEquals(org.lora4j.core.LoraConfig.DEFAULT_TARGET_MODULES, d.lora().targetModules());
        assertEquals(Optimizer.Kind.ADAMW, d.optimizer());
        assertEquals(2e-4, d.lr());
        assertEquals(LrSchedule.Kind.LINEAR, d.schedule());
        assertEquals(1.0, d.maxGradNorm());
        assertEquals(8, d.batchSize());
        assertEquals(1, d.epochs());
        assertEquals(256, d.maxLength());
        assertEquals(Dataset.Overflow.TRUNCATE, d.overflow());
        assertEquals(0.1, d.evalFraction());
        assertEquals(2, d.keepCheckpoints());
        assertEquals(d, d.toBuilder().build());
        TrainConfig odd = TrainConfig.builder().full().optimizer(Optimizer.Kind.SGD).lr(0.5).schedule(LrSchedule.Kind.COSINE)
                .warmupSteps(3).weightDecay(0.2).maxGradNorm(0).batchSize(2).gradAccum(4).maxSteps(7).epochs(2).seed(-9L)
                .maxLength(33).overflow(Dataset.Overflow.REFUSE).packed(true).evalFraction(0).evalEvery(1).snapshotEvery(2)
                .checkpointEvery(5).keepCheckpoints(9).earlyStopLoss(0.25).earlyStopSteps(6).build();
        assertEquals(odd, odd.toBuilder().build(), "toBuilder carries every field");
        assertEquals(odd, TrainConfig.fromJson(odd.toJson()));
        assertEquals(d, TrainConfig.fromJson(d.toJson()));
    }

    @Test
    void builderValidatesAsTheConstructorDoes() {
        assertEquals("lr must be finite and >= 0, got NaN", refused(() -> TrainConfig.builder().lr(Double.NaN).build()));
        assertEquals("keep_checkpoints must be >= 1, got 0", refused(() -> TrainConfig.builder().keepCheckpoints(0).build()));
    }

    @Test
    void jsonIsByteCompatibleWithEarlierRuns() {
        // The exact run.json form written before the builder existed (field order and number forms).
        assertEquals("{\"lora\":{\"r\":8,\"lora_alpha\":16.0,\"lora_dropout\":0.0,\"use_rslora\":false,"
                + "\"init_lora_weights\":\"true\",\"target_modules\":[\"q_proj\",\"k_proj\",\"v_proj\",\"o_proj\","
                + "\"gate_proj\",\"up_proj\",\"down_proj\"],\"layers_to_transform\":[]},\"optimizer\":\"adamw\","
                + "\"lr\":2.0E-4,\"schedule\":\"linear\",\"warmup_steps\":0,\"weight_decay\":0.0,\"max_grad_norm\":1.0,"
                + "\"batch_size\":8,\"grad_accum\":1,\"max_steps\":0,\"epochs\":1,\"seed\":0,\"max_length\":256,"
                + "\"overflow\":\"truncate\",\"packed\":false,\"eval_fraction\":0.1,\"eval_every\":50,"
                + "\"snapshot_every\":0,\"checkpoint_every\":50,\"keep_checkpoints\":2,\"early_stop_loss\":0.0,"
                + "\"early_stop_steps\":0}", TrainConfig.defaults().toJson().toString());
    }

    @Test
    void differencesNameEachFieldWithBothValues() {
        TrainConfig a = TrainConfig.defaults();
        TrainConfig b = a.toBuilder().lora(a.lora().withDropout(0.05)).lr(1e-3).maxSteps(100).build();
        assertEquals(List.of("lora.lora_dropout: 0.0 -> 0.05", "lr: 2.0E-4 -> 0.001", "max_steps: 0 -> 100"), a.differences(b));
        assertEquals(List.of(), a.differences(a));
        assertEquals(List.of("lora: " + a.toJson().get("lora") + " -> null"),
                a.differences(a.toBuilder().full().build()));
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
        ((com.fasterxml.jackson.databind.node.ObjectNode) o.get("lora")).put("r", 2.5);
        assertEquals("training config: 'lora.r' must be an integer, got 2.5", refused(() -> TrainConfig.fromJson(o)));
    }
}

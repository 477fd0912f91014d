package org.lora4j.train.trainer;

import org.lora4j.core.AtomicFiles;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.PeftAdapter;
import org.lora4j.core.PeftAdapters;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.analysis.Snapshots;
import org.lora4j.train.analysis.Trajectory;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.optim.Optimizer;
import org.lora4j.train.text.ByteTokenizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainerTest {
    private static final ByteTokenizer TOK = new ByteTokenizer();
    private static Path dataFile;

    @BeforeAll
    static void data(@TempDir Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        String[] q = {"fever", "loan", "marathon", "bread", "flight", "cough", "salary", "swim"};
        for (int i = 0; i < 16; i++) {
            lines.add("{\"messages\":[{\"role\":\"user\",\"content\":\"" + q[i % q.length] + " " + i
                    + "?\"},{\"role\":\"assistant\",\"content\":\"safe " + q[i % q.length] + "\"}]}");
        }
        dataFile = dir.resolve("train.jsonl");
        Files.writeString(dataFile, String.join("\n", lines) + "\n");
    }

    private static DecoderModel tinyModel(long seed) {
        return DecoderModel.randomInit(ModelConfig.llama(TOK.vocabSize(), 32, 64, 2, 4, 2), seed);
    }

    private static TrainConfig config(LoraConfig lora, double lr, int maxSteps, int batch, int accum) {
        return base().lora(lora).lr(lr).maxSteps(maxSteps).batchSize(batch).gradAccum(accum).build();
    }

    /** The tests' run: small rows, a quarter held out, evaluation every 4 steps, every step snapshot and checkpointed. */
    private static TrainConfig.Builder base() {
        return TrainConfig.builder().lora(lora()).warmupSteps(2).weightDecay(0.01).batchSize(4).seed(5L).maxLength(64)
                .evalFraction(0.25).evalEvery(4).snapshotEvery(1).checkpointEvery(1).keepCheckpoints(100);
    }

    private static LoraConfig lora() {
        return new LoraConfig(4, 8, 0.1, false, LoraConfig.Init.DEFAULT, List.of("q_proj", "v_proj", "down_proj"), List.of());
    }

    private static Trainer trainer(TrainConfig c, Path out, long modelSeed) throws IOException {
        DecoderModel model = tinyModel(modelSeed);
        model.setNameOrPath("tiny-test");
        Dataset all = Dataset.load(dataFile, TOK, c.maxLength(), c.overflow());
        Trainer t = new Trainer(model, TOK, c, all, out);   // attaches c.lora() and holds out c.evalFraction()
        t.setProgress(false);
        return t;
    }

    static List<JsonNode> metrics(Path out) throws IOException {
        ObjectMapper m = new ObjectMapper();
        List<JsonNode> rows = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            ObjectNode n = (ObjectNode) m.readTree(line);
            n.remove("tokens_per_s");   // wall-clock: the only field allowed to differ between runs
            rows.add(n);
        }
        return rows;
    }

    @Test
    void loraTrainingLowersTheLossAndWritesEverything(@TempDir Path out) throws IOException {
        TrainConfig c = config(lora(), 5e-2, 40, 4, 1);
        Trainer t = trainer(c, out, 1);
        List<Integer> seen = new ArrayList<>();
        List<Double> bNorms = new ArrayList<>();
        t.addCallback(state -> {
            seen.add(state.globalStep());
            bNorms.add(state.adapters().get("model.layers.0.mlp.down_proj").b().norm2Number().doubleValue());
            assertEquals(state.globalStep() == 0, Double.isNaN(state.loss()));
            assertEquals(state.globalStep() == 0, Double.isNaN(state.learningRate()));
            assertEquals(state.globalStep() % 4 == 0 && state.globalStep() > 0, state.evalLoss() != null, "eval every 4 steps");
            assertEquals(state.globalStep() == 40, state.trainingEnds());
            assertEquals(40, state.maxSteps());
        });
        Trainer.Result r = t.run();
        assertEquals(41, seen.size());
        assertEquals(List.of(0, 1, 2), seen.subList(0, 3));
        assertEquals(0.0, bNorms.get(0));
        assertTrue(bNorms.get(40) > 0);
        List<JsonNode> m = metrics(out);
        assertEquals(40, m.size());
        double first = m.get(0).get("loss").asDouble();
        // A rank-4 adapter on a random base barely moves the near-uniform logits; it must still learn.
        assertTrue(r.lastLoss() < first - 0.2, "loss " + first + " -> " + r.lastLoss());
        assertTrue(m.get(3).has("eval_loss") && !m.get(2).has("eval_loss"), "eval every 4 steps");
        JsonNode adapters = m.get(0).get("adapters");
        assertEquals(6, adapters.size(), "q, v, down of 2 layers");
        // Step 1 runs at rate 0 and leaves B at zero, as torch.optim.AdamW does (ND4J's Adam op used to
        // replace a zero step size by epsilon); step 2 moves it.
        assertEquals(0.0, adapters.get("model.layers.0.mlp.down_proj").get("b_norm").asDouble());
        assertTrue(m.get(1).get("adapters").get("model.layers.0.mlp.down_proj").get("b_norm").asDouble() > 0);
        assertEquals(0.0, m.get(0).get("lr").asDouble(), "HF warm-up: step 1 runs at rate 0");
        // The final adapter is PEFT's, loadable and with the run's provenance.
        PeftAdapter saved = PeftAdapters.load(out);
        assertEquals(6, saved.loraA().size());
        assertEquals("tiny-test", saved.baseModelNameOrPath());
        JsonNode run = new ObjectMapper().readTree(out.resolve("run.json").toFile());
        assertEquals(5, run.get("seed").asInt());
        assertEquals(c, TrainConfig.fromJson(run.get("config")));
        // Snapshots every step plus the initial one, readable as trajectories.
        Trajectory b = Snapshots.trajectory(out, "model.layers.1.mlp.down_proj", "lora_B");
        assertEquals(41, b.size());
        assertEquals(0.0, b.norms()[0], "B starts at zero");
        assertTrue(b.norms()[40] > 0);
        // keep 100 keeps all 40 checkpoints here; pruning is tested with keep 2 below.
        try (Stream<Path> s = Files.list(out.resolve("checkpoints"))) {
            assertEquals(40, s.count());
        }
    }

    @Test
    void resumingFromACheckpointContinuesBitForBit(@TempDir Path dir) throws IOException {
        TrainConfig c = config(lora(), 1e-2, 10, 4, 1);
        Path straight = dir.resolve("straight");
        trainer(c, straight, 1).run();
        // A second run that is cut after step 4: copy the first run's state at step 4 and resume it.
        Path cut = dir.resolve("cut");
        Files.createDirectories(cut.resolve("checkpoints"));
        copyTree(straight.resolve("checkpoints/step-000004"), cut.resolve("checkpoints/step-000004"));
        List<String> lines = Files.readAllLines(straight.resolve("metrics.jsonl"));
        // The crash left steps 5 and 6 logged but not checkpointed: resume must drop and redo them.
        Files.write(cut.resolve("metrics.jsonl"), lines.subList(0, 6));
        Trainer resumed = trainer(c, cut, 1);   // the same base model, a fresh adapter: the checkpoint supplies the rest
        resumed.resumeFrom(cut);
        resumed.run();
        assertEquals(metrics(straight), metrics(cut));
        assertSameAdapters(straight, cut);
    }

    /** Bit for bit: INDArray.equals allows 1e-5, so compare the values exactly, and the files byte for byte. */
    static void assertSameAdapters(Path x, Path y) throws IOException {
        PeftAdapter a = PeftAdapters.load(x);
        PeftAdapter b = PeftAdapters.load(y);
        assertEquals(a.loraA().keySet(), b.loraA().keySet());
        for (String k : a.loraB().keySet()) {
            assertArrayEquals(values(a.loraA().get(k)), values(b.loraA().get(k)), 0.0, k);
            assertArrayEquals(values(a.loraB().get(k)), values(b.loraB().get(k)), 0.0, k);
        }
        assertArrayEquals(Files.readAllBytes(x.resolve("adapter_model.safetensors")),
                Files.readAllBytes(y.resolve("adapter_model.safetensors")));
    }

    @Test
    void resumeRefusesADifferentConfigOrBaseModel(@TempDir Path dir) throws IOException {
        trainer(config(lora(), 1e-2, 3, 4, 1), dir, 1).run();
        Trainer other = trainer(config(lora(), 2e-2, 3, 4, 1), dir.resolve("other"), 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> other.resumeFrom(dir));
        assertTrue(e.getMessage().contains("different config"), e.getMessage());
        // Only the fields that differ, old -> new, not two whole configs.
        assertTrue(e.getMessage().contains("\n  lr: 0.01 -> 0.02"), e.getMessage());
        assertEquals(2, e.getMessage().split("\n").length, e.getMessage());
        assertFalse(e.getMessage().contains("{"), e.getMessage());
        assertTrue(e.getMessage().contains(dir.resolve("checkpoints/step-000003/trainer_state.json").toString()), e.getMessage());
        Trainer otherBase = trainer(config(lora(), 1e-2, 3, 4, 1), dir.resolve("base"), 99);
        e = assertThrows(IllegalArgumentException.class, () -> otherBase.resumeFrom(dir));
        assertTrue(e.getMessage().contains("base model"), e.getMessage());
    }

    @Test
    void gradientAccumulationEqualsOneLargerBatch(@TempDir Path dir) throws IOException {
        LoraConfig noDropout = lora().withDropout(0);
        trainer(config(noDropout, 1e-2, 3, 4, 1), dir.resolve("big"), 1).run();
        trainer(config(noDropout, 1e-2, 3, 2, 2), dir.resolve("accum"), 1).run();
        List<JsonNode> big = metrics(dir.resolve("big"));
        List<JsonNode> acc = metrics(dir.resolve("accum"));
        for (int i = 0; i < 3; i++) {
            assertEquals(big.get(i).get("loss").asDouble(), acc.get(i).get("loss").asDouble(), 1e-5, "loss at step " + (i + 1));
            assertEquals(big.get(i).get("grad_norm").asDouble(), acc.get(i).get("grad_norm").asDouble(), 1e-4);
        }
    }

    @Test
    void fullTrainingOfATinyModelDrivesTheLossWellBelowItsStart(@TempDir Path out) throws IOException {
        TrainConfig c = config(null, 1e-2, 60, 4, 1);
        Trainer.Result r = trainer(c, out, 4).run();
        double first = metrics(out).get(0).get("loss").asDouble();
        assertTrue(r.lastLoss() < 0.5 * first, "loss " + first + " -> " + r.lastLoss());
        assertTrue(r.lastEvalLoss() < 0.6 * first, "held-out loss " + r.lastEvalLoss() + " (shared answer phrases)");
    }

    @Test
    void fullFineTuneSavesAHuggingFaceModel(@TempDir Path out) throws IOException {
        TrainConfig c = config(null, 3e-3, 6, 4, 1);
        Trainer.Result r = trainer(c, out, 2).run();
        assertTrue(Files.exists(out.resolve("model.safetensors")) && Files.exists(out.resolve("config.json")));
        DecoderModel reloaded = DecoderModel.load(out);
        DecoderModel fresh = tinyModel(2);
        INDArray w1 = reloaded.parameters().get("model.layers.0.mlp.down_proj.weight");
        INDArray w0 = fresh.parameters().get("model.layers.0.mlp.down_proj.weight");
        assertFalse(w1.equalsWithEps(w0, 1e-7), "training changed the weights that were saved");
        assertTrue(Double.isFinite(r.lastLoss()));
    }

    @Test
    void divergenceStopsWithTheLastGoodCheckpointIntact(@TempDir Path out) throws IOException {
        // SGD at an absurd rate without clipping: finite for a step or two, then Inf/NaN.
        TrainConfig c = base().full().optimizer(Optimizer.Kind.SGD).lr(1e12).schedule(LrSchedule.Kind.CONSTANT)
                .warmupSteps(0).weightDecay(0).maxGradNorm(0).maxSteps(20).evalEvery(0).snapshotEvery(0).build();
        Trainer t = trainer(c, out, 3);
        TrainingDivergedException e = assertThrows(TrainingDivergedException.class, t::run);
        assertTrue(e.getMessage().contains("step " + e.step()), e.getMessage());
        int last = e.step() - 1;
        assertTrue(last >= 1, "diverged at step " + e.step());
        Path good = out.resolve(String.format("checkpoints/step-%06d", last));
        assertTrue(e.getMessage().contains(good.toString()), e.getMessage());
        CheckpointStore.Loaded loaded = CheckpointStore.read(good);
        assertEquals(last, loaded.step());
        assertFalse(Files.exists(out.resolve(String.format("checkpoints/step-%06d", e.step()))));
        try (Stream<Path> s = Files.list(out.resolve("checkpoints"))) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".tmp")), "no half-written checkpoint");
        }
    }

    @Test
    void earlyStoppingEndsTheRunAndSavesTheAdapter(@TempDir Path out) throws IOException {
        TrainConfig c = base().lr(1e-2).schedule(LrSchedule.Kind.CONSTANT).warmupSteps(0).weightDecay(0).maxSteps(50)
                .evalEvery(0).snapshotEvery(0).checkpointEvery(0).keepCheckpoints(2).earlyStopLoss(100.0).earlyStopSteps(3).build();
        Trainer.Result r = trainer(c, out, 1).run();
        assertTrue(r.stoppedEarly());
        assertEquals(3, r.steps(), "every loss is under 100, so three steps in a row end the run");
        assertTrue(Files.exists(out.resolve("adapter_model.safetensors")));
        assertTrue(Files.exists(out.resolve("checkpoints/step-000003")));
    }

    static double[] values(INDArray x) {
        return x.reshape(x.length()).toDoubleVector();
    }

    /** Every file under a directory (but the lock) with its bytes and modification time. */
    static Map<String, String> contents(Path dir) throws IOException {
        Map<String, String> m = new java.util.TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                m.put(dir.relativize(p).toString(), java.util.Arrays.hashCode(Files.readAllBytes(p)) + "@"
                        + Files.getLastModifiedTime(p).toMillis());
            }
        }
        return m;
    }

    @Test
    void resumingAFinishedRunSaysSoAndRewritesNothing(@TempDir Path out) throws Exception {
        TrainConfig c = config(lora(), 1e-2, 5, 4, 1);
        Trainer.Result first = trainer(c, out, 1).run();
        assertFalse(first.alreadyComplete());
        Map<String, String> before = contents(out);
        Thread.sleep(20);   // a rewrite would show in the modification times
        Trainer again = trainer(c, out, 1);
        again.resumeFrom(out);
        Trainer.Result r = again.run();
        assertTrue(r.alreadyComplete());
        assertEquals(5, r.steps());
        assertEquals(first.lastLoss(), r.lastLoss(), 0.0, "the recorded final loss");
        assertEquals(first.lastEvalLoss(), r.lastEvalLoss());
        assertEquals(before, contents(out), "nothing rewritten");
    }

    @Test
    void aFinishedRunMadeLongerEndsAsTheLongerRunWould(@TempDir Path dir) throws IOException {
        // A constant schedule: the learning rate of a step does not depend on the run's length.
        java.util.function.IntFunction<TrainConfig> steps = n -> base().lr(1e-2).schedule(LrSchedule.Kind.CONSTANT).warmupSteps(0)
                .maxSteps(n).checkpointEvery(3).build();
        Path straight = dir.resolve("straight");
        trainer(steps.apply(10), straight, 1).run();
        Path extended = dir.resolve("extended");
        Trainer shorter = trainer(steps.apply(6), extended, 1);
        String id = shorter.runId();
        shorter.run();
        Trainer longer = trainer(steps.apply(10), extended, 1);
        assertEquals(id, longer.runId(), "a longer run is the same run");
        longer.resumeFrom(extended);
        Trainer.Result r = longer.run();
        assertFalse(r.alreadyComplete());
        assertEquals(10, r.steps());
        assertSameAdapters(straight, extended);
        List<JsonNode> a = metrics(straight);
        List<JsonNode> b = metrics(extended);
        assertEquals(10, b.size());
        for (int i = 0; i < 10; i++) {
            ((ObjectNode) a.get(i)).remove("eval_loss");   // the shorter run also evaluated at its end, step 6
            ((ObjectNode) b.get(i)).remove("eval_loss");
        }
        assertEquals(a, b);
        // Fewer steps than the checkpoint has done is refused.
        Trainer tooShort = trainer(steps.apply(8), extended, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tooShort.resumeFrom(extended));
        assertTrue(e.getMessage().contains("at step 10, past this run's 8 steps"), e.getMessage());
    }

    @Test
    void aCorruptNewestCheckpointIsSkippedForThePreviousOne(@TempDir Path dir) throws IOException {
        TrainConfig c = config(lora(), 1e-2, 10, 4, 1);
        Path straight = dir.resolve("straight");
        trainer(c, straight, 1).run();
        for (String damage : List.of("weights", "state")) {
            Path cut = dir.resolve("cut-" + damage);
            Files.createDirectories(cut.resolve("checkpoints"));
            copyTree(straight.resolve("checkpoints/step-000004"), cut.resolve("checkpoints/step-000004"));
            copyTree(straight.resolve("checkpoints/step-000005"), cut.resolve("checkpoints/step-000005"));
            Path broken = cut.resolve("checkpoints/step-000005/" + (damage.equals("weights") ? "weights.safetensors" : "trainer_state.json"));
            byte[] bytes = Files.readAllBytes(broken);
            Files.write(broken, java.util.Arrays.copyOf(bytes, bytes.length / 2));   // a disk that lost the tail
            Files.write(cut.resolve("metrics.jsonl"), Files.readAllLines(straight.resolve("metrics.jsonl")).subList(0, 6));
            Trainer resumed = trainer(c, cut, 1);
            resumed.resumeFrom(cut);
            resumed.run();
            assertEquals(metrics(straight), metrics(cut), damage);
            assertSameAdapters(straight, cut);
        }
    }

    @Test
    void aCorruptStateFileIsNamed(@TempDir Path dir) throws IOException {
        trainer(config(lora(), 1e-2, 3, 4, 1), dir, 1).run();
        AtomicFiles.deleteTree(dir.resolve("checkpoints/step-000001"));
        AtomicFiles.deleteTree(dir.resolve("checkpoints/step-000002"));
        Path state = dir.resolve("checkpoints/step-000003/trainer_state.json");
        Files.writeString(state, "{\"magic\": \"lora4j-checkpoint\", \"format_version\": 2, \"step\": \"two\"");
        IOException e = assertThrows(IOException.class, () -> CheckpointStore.read(state.getParent()));
        assertTrue(e.getMessage().startsWith(state.toString()) && e.getMessage().contains("not valid JSON"), e.getMessage());
        Files.writeString(state, "{\"magic\": \"lora4j-checkpoint\", \"format_version\": 2, \"step\": \"two\"}");
        e = assertThrows(IOException.class, () -> CheckpointStore.read(state.getParent()));
        assertTrue(e.getMessage().startsWith(state.toString()), e.getMessage());
        // Through resume, with no older checkpoint to fall back on, the error still names the file.
        Trainer t = trainer(config(lora(), 1e-2, 3, 4, 1), dir, 1);
        e = assertThrows(IOException.class, () -> t.resumeFrom(dir));
        assertTrue(e.getMessage().contains(state.toString()), e.getMessage());
    }

    @Test
    void everyOutputCarriesTheRunIdAndResumeRefusesToMixRuns(@TempDir Path dir) throws IOException {
        Path a = dir.resolve("a");
        Trainer ta = trainer(config(lora(), 1e-2, 3, 4, 1), a, 1);
        ta.run();
        String id = ta.runId();
        assertTrue(id.matches("[0-9a-f]{16}"), id);
        for (JsonNode line : metrics(a)) {
            assertEquals(id, line.get("run_id").asText());
        }
        assertEquals(id, new ObjectMapper().readTree(a.resolve("run.json").toFile()).get("run_id").asText());
        assertEquals(id, CheckpointStore.read(a.resolve("checkpoints/step-000003")).state().runId());
        try (var f = org.lora4j.core.SafetensorsFile.open(a.resolve("snapshots/step-000001.safetensors"))) {
            assertEquals(id, f.metadata().get(AdapterSnapshots.RUN_ID_KEY));
        }
        try (var f = org.lora4j.core.SafetensorsFile.open(a.resolve("adapter_model.safetensors"))) {
            assertEquals(id, f.metadata().get("lora4j_run_id"));
        }
        // Another seed is another run: its metrics line in a's file is refused, naming the file and line.
        Path b = dir.resolve("b");
        TrainConfig otherSeed = base().lr(1e-2).maxSteps(3).seed(6L).build();
        Trainer tb = trainer(otherSeed, b, 1);
        tb.run();
        assertFalse(id.equals(tb.runId()));
        Path mixed = dir.resolve("mixed");
        copyTree(a, mixed);
        List<String> lines = new ArrayList<>(Files.readAllLines(mixed.resolve("metrics.jsonl")));
        lines.set(1, Files.readAllLines(b.resolve("metrics.jsonl")).get(1));
        Files.write(mixed.resolve("metrics.jsonl"), lines);
        Files.delete(mixed.resolve("run.json"));
        Trainer tm = trainer(config(lora(), 1e-2, 3, 4, 1), mixed, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tm.resumeFrom(mixed));
        assertTrue(e.getMessage().contains(mixed.resolve("metrics.jsonl") + " line 2") && e.getMessage().contains(tb.runId()),
                e.getMessage());
        // b's run.json in a directory: a's checkpoint cannot continue there.
        Files.copy(b.resolve("run.json"), mixed.resolve("run.json"));
        Trainer tm2 = trainer(config(lora(), 1e-2, 3, 4, 1), mixed, 1);
        e = assertThrows(IllegalArgumentException.class, () -> tm2.resumeFrom(a));
        assertTrue(e.getMessage().contains(mixed.resolve("run.json").toString()) && e.getMessage().contains("runs do not mix"),
                e.getMessage());
        // Snapshots of two runs in one folder are refused by the reader, naming one file of each.
        Files.copy(b.resolve("snapshots/step-000002.safetensors"), a.resolve("snapshots/step-000002.safetensors"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        IOException se = assertThrows(IOException.class,
                () -> Snapshots.trajectory(a, "model.layers.1.mlp.down_proj", "lora_B"));
        assertTrue(se.getMessage().contains("step-000000.safetensors is run " + id)
                && se.getMessage().contains("step-000002.safetensors is run " + tb.runId()), se.getMessage());
    }

    @Test
    void aNewRunNeverAppendsToAnotherRunsFiles(@TempDir Path out) throws IOException {
        trainer(config(lora(), 1e-2, 3, 4, 1), out, 1).run();
        Trainer second = trainer(config(lora(), 2e-2, 3, 4, 1), out, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, second::run);
        assertTrue(e.getMessage().contains("already holds a run"), e.getMessage());
        assertEquals(3, metrics(out).size());
    }

    @Test
    void resumingBeforeTheFirstCheckpointStartsAgainWithoutDuplicateSteps(@TempDir Path dir) throws IOException {
        TrainConfig c = config(lora(), 1e-2, 6, 4, 1);
        Path straight = dir.resolve("straight");
        trainer(c, straight, 1).run();
        // Killed after logging step 1, before any checkpoint: run.json and one metrics line.
        Path killed = dir.resolve("killed");
        Files.createDirectories(killed);
        Files.copy(straight.resolve("run.json"), killed.resolve("run.json"));
        Files.write(killed.resolve("metrics.jsonl"), Files.readAllLines(straight.resolve("metrics.jsonl")).subList(0, 1));
        Trainer t = trainer(c, killed, 1);
        t.resumeFrom(killed);
        t.run();
        assertEquals(metrics(straight), metrics(killed), "steps 1..6 once each");
    }

    @Test
    void warmUpAsLongAsTheRunIsRefused(@TempDir Path out) throws IOException {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> config(lora(), 1e-2, 2, 4, 1));
        assertTrue(e.getMessage().startsWith("warmup_steps 2 must be less than the run's 2 steps"), e.getMessage());
        // With epochs, the run's length is known only from the data: 12 examples in batches of 4, 1 epoch.
        TrainConfig byEpochs = base().lr(1e-2).warmupSteps(5).weightDecay(0).maxSteps(0)
                .evalEvery(0).snapshotEvery(0).checkpointEvery(0).keepCheckpoints(2).build();
        e = assertThrows(IllegalArgumentException.class, () -> trainer(byEpochs, out, 1));
        assertTrue(e.getMessage().startsWith("warmup_steps 5 must be less than the run's 3 steps"), e.getMessage());
    }

    @Test
    void aFullDiskNamesTheFileItCouldNotWrite(@TempDir Path out) throws IOException {
        Path full = Path.of("/dev/full");   // every write fails with ENOSPC, "No space left on device"
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(full), "needs Linux's /dev/full");
        Trainer t = trainer(config(lora(), 1e-2, 3, 4, 1), out, 1);
        t.addCallback(state -> {
            if (state.globalStep() == 0) {
                Files.createSymbolicLink(out.resolve("metrics.jsonl"), full);
            }
        });
        IOException e = assertThrows(IOException.class, t::run);
        assertTrue(e.getMessage().contains(out.resolve("metrics.jsonl").toString())
                && e.getMessage().contains("No space left on device"), e.getMessage());
    }

    @Test
    void runJsonIsReadableByOthersAsEveryOtherOutput(@TempDir Path out) throws IOException {
        trainer(config(lora(), 1e-2, 3, 4, 1), out, 1).run();
        assertEquals(Files.getPosixFilePermissions(out.resolve("metrics.jsonl")),
                Files.getPosixFilePermissions(out.resolve("run.json")));
        assertTrue(Files.getPosixFilePermissions(out.resolve("run.json"))
                .contains(java.nio.file.attribute.PosixFilePermission.OTHERS_READ));
    }

    static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Library use: one LoRA config, the tokenizer's pad id, full-length data, callbacks, progress

    @Test
    void theTrainerAttachesTheConfigsLoraSeededFromTheConfig(@TempDir Path dir) throws IOException {
        TrainConfig c = config(lora(), 1e-2, 3, 4, 1);
        DecoderModel byHand = tinyModel(1);
        new PeftModel(byHand).addAdapter("default", c.lora(), c.seed());   // what callers used to do
        Dataset all = Dataset.load(dataFile, TOK, c.maxLength(), c.overflow());
        Trainer attachedByHand = new Trainer(byHand, TOK, c, all, dir.resolve("a"));
        Trainer attachedByTrainer = trainer(c, dir.resolve("b"), 1);
        assertEquals(attachedByHand.runId(), attachedByTrainer.runId(), "same adapter, same starting weights");
    }

    @Test
    void aModelWhoseAdaptersAreNotTheConfigsIsRefusedNamingTheDifference(@TempDir Path dir) throws IOException {
        TrainConfig c = config(lora(), 1e-2, 3, 4, 1);
        Dataset all = Dataset.load(dataFile, TOK, c.maxLength(), c.overflow());
        DecoderModel m = tinyModel(1);
        new PeftModel(m).addAdapter("default", new LoraConfig(8, 8, 0.1, false, LoraConfig.Init.DEFAULT,
                List.of("q_proj", "v_proj", "down_proj"), List.of()), 5L);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Trainer(m, TOK, c, all, dir));
        assertTrue(e.getMessage().contains("model.layers.0.self_attn.q_proj has adapter 'default' with r 8 (the config says 4)"),
                e.getMessage());

        DecoderModel fewer = tinyModel(1);
        new PeftModel(fewer).addAdapter("default", lora().withLayersToTransform(List.of(0)), 5L);
        e = assertThrows(IllegalArgumentException.class, () -> new Trainer(fewer, TOK, c, all, dir));
        assertTrue(e.getMessage().contains("layers_to_transform [0] (the config says [])")
                && e.getMessage().contains("model.layers.1.self_attn.q_proj is targeted but has no adapter"), e.getMessage());

        TrainConfig full = c.toBuilder().full().lr(1e-3).build();
        e = assertThrows(IllegalArgumentException.class, () -> new Trainer(m, TOK, full, all, dir));
        assertTrue(e.getMessage().startsWith("the training config is a full fine-tune (lora null), but the model has adapters"),
                e.getMessage());
        assertFalse(Files.exists(dir.resolve("run.json")), "refused before writing anything");
    }

    @Test
    void dataLoadedAtFullLengthIsCutToMaxLengthByTheTrainer(@TempDir Path dir) throws IOException {
        TrainConfig c = config(lora(), 1e-2, 3, 4, 1).toBuilder().maxLength(40).build();
        Dataset cutAtLoad = Dataset.load(dataFile, TOK, 40, Dataset.Overflow.TRUNCATE);
        Dataset whole = Dataset.load(dataFile, TOK);
        assertTrue(whole.examples().stream().anyMatch(e -> e.length() > 40), "the test needs examples longer than 40");
        Trainer a = new Trainer(tinyModel(1), TOK, c, cutAtLoad, dir.resolve("a"));
        Trainer b = new Trainer(tinyModel(1), TOK, c, whole, dir.resolve("b"));
        assertEquals(a.runId(), b.runId(), "the same examples, the same run");
        a.setProgress(false);
        b.setProgress(false);
        assertEquals(a.run().lastLoss(), b.run().lastLoss());

        TrainConfig refuse = c.toBuilder().overflow(Dataset.Overflow.REFUSE).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Trainer(tinyModel(1), TOK, refuse, whole, dir.resolve("c")));
        assertTrue(e.getMessage().matches("\\Q" + dataFile + "\\E:\\d+: \\d+ tokens, more than the maximum length 40 .*"), e.getMessage());
    }

    @Test
    void aFullFineTuneSavesTheTokenizerBesideTheModel(@TempDir Path out) throws IOException {
        TrainConfig c = base().full().lr(1e-3).maxSteps(3).snapshotEvery(0).build();
        Trainer t = trainer(c, out, 1);
        t.run();
        assertTrue(Files.exists(out.resolve("model.safetensors")));
        assertTrue(Files.exists(out.resolve("tokenizer_config.json")), "the chat template and special tokens too");
        assertEquals(TOK.encode("fever?").length, org.lora4j.train.text.Tokenizers.load(out).encode("fever?").length);
    }

    @Test
    void samplingDoesNotDisturbTrainingAndWritesTheExpectedSteps(@TempDir Path dir) throws IOException {
        TrainConfig c = config(lora(), 5e-2, 7, 4, 1);   // dropout 0.1: the dropout stream must not move either
        Trainer plain = trainer(c, dir.resolve("plain"), 1);
        plain.run();
        Trainer sampled = trainer(c, dir.resolve("sampled"), 1);
        sampled.addCallback(SamplingCallback.builder(TOK).prompt("fever 3?").prompt(List.of(
                        org.lora4j.train.text.Message.system("be brief"), org.lora4j.train.text.Message.user("loan?")))
                .every(3).maxNewTokens(5).temperature(1.0).seed(9).build());
        sampled.run();
        PeftAdapter p = PeftAdapters.load(dir.resolve("plain"));
        PeftAdapter s = PeftAdapters.load(dir.resolve("sampled"));
        for (String module : p.loraA().keySet()) {
            assertArrayEquals(p.loraA().get(module).data().asFloat(), s.loraA().get(module).data().asFloat(), module);
            assertArrayEquals(p.loraB().get(module).data().asFloat(), s.loraB().get(module).data().asFloat(), module);
        }
        assertEquals(metrics(dir.resolve("plain")), metrics(dir.resolve("sampled")));

        List<JsonNode> lines = new ArrayList<>();
        for (String l : Files.readAllLines(dir.resolve("sampled").resolve(SamplingCallback.FILE))) {
            lines.add(new ObjectMapper().readTree(l));
        }
        assertEquals(List.of(0, 0, 3, 3, 6, 6, 7, 7), lines.stream().map(n -> n.get("step").asInt()).toList(),
                "every 3 steps from step 0, and the end");
        assertEquals("loan?", lines.get(1).get("prompt").get(1).get("content").asText());
        assertEquals(sampled.runId(), lines.get(0).get("run_id").asText());
        assertTrue(lines.stream().map(n -> n.get("seed").asLong()).distinct().count() == 8, "a seed per sample");

        // The same callback on the same run writes the same samples.
        Trainer again = trainer(c, dir.resolve("again"), 1);
        again.addCallback(SamplingCallback.builder(TOK).prompt("fever 3?").prompt(List.of(
                        org.lora4j.train.text.Message.system("be brief"), org.lora4j.train.text.Message.user("loan?")))
                .every(3).maxNewTokens(5).temperature(1.0).seed(9).build());
        again.run();
        assertEquals(Files.readAllLines(dir.resolve("sampled").resolve(SamplingCallback.FILE)),
                Files.readAllLines(dir.resolve("again").resolve(SamplingCallback.FILE)));
    }

    @Test
    void progressLinesReachAStreamThatIsNotATerminalWithoutCarriageReturns(@TempDir Path dir) throws IOException {
        java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
        Trainer t = trainer(config(lora(), 1e-2, 20, 4, 1), dir.resolve("lines"), 1);
        t.setProgress(ProgressDisplay.AUTO, new java.io.PrintStream(buf, true, java.nio.charset.StandardCharsets.UTF_8));
        t.run();
        String shown = buf.toString(java.nio.charset.StandardCharsets.UTF_8);
        // Under the test runner the JVM has no terminal, as in an IDE's run window: AUTO means plain lines.
        assertFalse(shown.contains("\r") || shown.contains("\u001b"), shown);
        List<String> lines = List.of(shown.split("\n"));
        assertEquals(List.of(1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20), lines.stream()
                .map(l -> Integer.parseInt(l.substring(5, l.indexOf('/')))).toList(), shown);

        java.io.ByteArrayOutputStream off = new java.io.ByteArrayOutputStream();
        Trainer quiet = trainer(config(lora(), 1e-2, 3, 4, 1), dir.resolve("off"), 1);
        quiet.setProgress(ProgressDisplay.OFF, new java.io.PrintStream(off, true, java.nio.charset.StandardCharsets.UTF_8));
        quiet.run();
        assertEquals(0, off.size());
    }
}

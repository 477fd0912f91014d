package org.lora4j.train.elasticity;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.LoraConfig;
import org.lora4j.train.eval.SampledGeneration;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.trainer.TrainConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The resistance protocol end to end on a tiny model: what ran, in both directions of every pair. */
class ResistanceTest {
    static final ObjectMapper JSON = new ObjectMapper();

    /** A tiny byte-level model directory, an alignment set of {@code n} chat lines and two prompts. */
    static Path[] world(Path dir, int n) throws Exception {
        Path model = dir.resolve("theta0");
        DecoderModel.randomInit(ModelConfig.llama(259, 32, 64, 2, 4, 2), 7).save(model);
        new ByteTokenizer().save(model);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            lines.add("{\"messages\":[{\"role\":\"user\",\"content\":\"q" + i + "\"},{\"role\":\"assistant\",\"content\":\""
                    + (i % 2 == 0 ? "be safe" : "stay careful") + "\"}]}");
        }
        Path alignment = dir.resolve("alignment.jsonl");
        Files.writeString(alignment, String.join("\n", lines) + "\n");
        Path prompts = dir.resolve("prompts.jsonl");
        Files.writeString(prompts, "{\"id\":1,\"question\":\"hi\"}\n\n{\"id\":2,\"question\":\"what now?\"}\n");
        return new Path[]{model, alignment, prompts};
    }

    static TrainConfig training(int epochs) {
        return TrainConfig.builder().lora(new LoraConfig(2, 4, 0, false, LoraConfig.Init.DEFAULT,
                        List.of("q_proj", "v_proj", "down_proj"), List.of()))
                .lr(2e-2).batchSize(2).epochs(epochs).seed(3).maxLength(64).build();
    }

    @Test
    void bothDirectionsOfEveryPairTrainAlike(@TempDir Path dir) throws Exception {
        Path[] w = world(dir, 7);
        Resistance.Settings s = new Resistance.Settings(w[0], w[1], w[2], training(2), new SampledGeneration.Settings(2, 1.0, 1.0, 6, 5, 3));
        Path out = dir.resolve("out");
        Files.createDirectories(out);
        Resistance.Report report = Resistance.run(s, out, Map.of("command", "test"));

        // thirds of 7 lines: 2, 2, 3
        assertEquals(2, Files.readAllLines(out.resolve("data/alignment-1.jsonl")).size());
        assertEquals(3, Files.readAllLines(out.resolve("data/alignment-3.jsonl")).size());
        for (int k = 1; k <= 3; k++) {
            assertTrue(Files.exists(out.resolve("models/theta-" + k + "/model.safetensors")));
            assertEquals(4, Files.readAllLines(out.resolve("answers/R-" + k + ".jsonl")).size(), "2 prompts x 2 samples");
        }
        JsonNode plan = JSON.readTree(out.resolve("plan.json").toFile());
        assertEquals(3, plan.get("pairs").size());
        String[][] expected = {{"theta-2", "R-1", "theta-1", "R-2"}, {"theta-3", "R-2", "theta-2", "R-3"},
                {"theta-3", "R-1", "theta-1", "R-3"}};
        for (int i = 0; i < 3; i++) {
            JsonNode p = plan.get("pairs").get(i);
            JsonNode inv = p.get("inverse");
            JsonNode fwd = p.get("forward");
            // The plan says so ...
            assertEquals(inv.get("config"), fwd.get("config"), p.get("id").asText());
            assertEquals(inv.get("examples"), fwd.get("examples"));
            assertEquals(inv.get("steps"), fwd.get("steps"));
            assertEquals(4, inv.get("examples").asInt());
            assertEquals(4, inv.get("steps").asInt(), "2 epochs of 2 batches of 2");
            // ... and the runs that happened say the same: their own run.json, written by the trainer.
            Path pairDir = out.resolve("pairs/" + p.get("id").asText());
            JsonNode ri = JSON.readTree(pairDir.resolve("inverse/run.json").toFile());
            JsonNode rf = JSON.readTree(pairDir.resolve("forward/run.json").toFile());
            assertEquals(ri.get("config"), rf.get("config"));
            assertEquals(inv.get("config"), ri.get("config"));
            assertEquals(ri.get("seed"), rf.get("seed"));
            assertEquals(ri.get("train_examples"), rf.get("train_examples"));
            assertEquals(4, ri.get("train_examples").asInt());
            assertEquals(ri.get("total_steps"), rf.get("total_steps"));
            assertEquals(ri.path("final").path("step"), rf.path("final").path("step"));
            // the right models on the right data
            assertEquals(out.resolve("models/" + expected[i][0]).toString(), ri.at("/provenance/base_model").asText());
            assertEquals(out.resolve("models/" + expected[i][2]).toString(), rf.at("/provenance/base_model").asText());
            assertEquals(lines(out.resolve("answers/" + expected[i][1] + ".jsonl")), lines(pairDir.resolve("inverse-data.jsonl")));
            assertEquals(lines(out.resolve("answers/" + expected[i][3] + ".jsonl")), lines(pairDir.resolve("forward-data.jsonl")));
            assertNotEquals(ri.get("train_sha256"), rf.get("train_sha256"), "different data: R_lo and R_hi");
            assertEquals(5, Files.readAllLines(pairDir.resolve("losses.csv")).size(), "a header and 4 steps");
        }
        for (Resistance.Pair p : report.pairs()) {
            assertTrue(Double.isFinite(p.inverse().meanLoss()) && Double.isFinite(p.forward().finalLoss()));
        }
        JsonNode table = JSON.readTree(out.resolve("resistance.json").toFile());
        assertEquals("θ2→θ1", table.at("/pairs/0/inverse").asText());
        assertEquals("θ1→θ3", table.at("/pairs/2/forward").asText());
        assertEquals(3, table.get("seed").asInt());
        assertTrue(table.hasNonNull("lora4j_version"));

        // Reproducible from the seed: the same table again.
        Path again = dir.resolve("again");
        Files.createDirectories(again);
        Resistance.run(s, again, Map.of("command", "test"));
        assertEquals(Files.readString(out.resolve("resistance.csv")), Files.readString(again.resolve("resistance.csv")));
        assertEquals(lines(out.resolve("answers/R-3.jsonl")), lines(again.resolve("answers/R-3.jsonl")));
    }

    @Test
    void refusesAnAlignmentSetTooSmallToSplit(@TempDir Path dir) throws Exception {
        Path[] w = world(dir, 2);
        Resistance.Settings s = new Resistance.Settings(w[0], w[1], w[2], training(1), new SampledGeneration.Settings(1, 0, 1, 4, 0, 64));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Resistance.run(s, dir.resolve("o"), Map.of()));
        assertEquals(w[1] + ": 2 example(s); the alignment set is split in thirds, so it needs at least 3", e.getMessage());
    }

    static List<String> lines(Path f) throws Exception {
        return Files.readAllLines(f).stream().filter(l -> !l.isBlank()).toList();
    }
}

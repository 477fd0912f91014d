package org.lora4j.examples;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.DecoderModel;
import org.lora4j.train.ModelConfig;
import org.lora4j.train.text.ByteTokenizer;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The lora4j command line, end to end on a tiny model: every subcommand, its help and its errors. */
class CommandLineTest {
    static Path model;
    static Path data;

    @BeforeAll
    static void tinyModelAndData(@TempDir Path dir) throws IOException {
        model = dir.resolve("model");
        DecoderModel.randomInit(ModelConfig.llama(259, 32, 64, 2, 4, 2), 7).save(model);
        new ByteTokenizer().save(model);
        data = dir.resolve("data.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            lines.add("{\"messages\":[{\"role\":\"user\",\"content\":\"q" + i + "\"},{\"role\":\"assistant\",\"content\":\"answer "
                    + (i % 3) + "\"}]}");
        }
        lines.add("{\"text\":\"a plain line\"}");
        Files.writeString(data, String.join("\n", lines) + "\n");
    }

    /** Runs a command in this JVM, returning its exit code and standard output. */
    static String[] run(String... args) throws Exception {
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        int rc;
        try {
            rc = Main.run(args);
        } finally {
            System.setOut(old);
        }
        return new String[]{Integer.toString(rc), buf.toString(StandardCharsets.UTF_8)};
    }

    static JsonNode lastJson(String stdout) throws IOException {
        String[] lines = stdout.strip().split("\n");
        return new ObjectMapper().readTree(lines[lines.length - 1]);
    }

    @Test
    void everyCommandHasHelp() throws Exception {
        for (String c : List.of("quickstart", "pretrain", "sft", "loss", "generate", "merge")) {
            String[] r = run(c, "--help");
            assertEquals("0", r[0], c);
            assertTrue(r[1].contains("lora4j " + c), c + " help: " + r[1]);
        }
        String[] usage = run("--help");
        assertTrue(usage[1].contains("pretrain") && usage[1].contains("merge"), usage[1]);
        assertTrue(run("sft", "--help")[1].contains("--lora-rank"));
    }

    @Test
    void quickstartRecoversTheKnownChange(@TempDir Path tmp) throws Exception {
        double relError = Quickstart.run(new Quickstart.Settings(4, 8, 300, 0.02, 0, tmp.resolve("qs")));
        assertTrue(relError < 0.01, "‖scaling·B·A − ΔW‖ / ‖ΔW‖ = " + relError);
        assertTrue(Files.exists(tmp.resolve("qs/adapter_model.safetensors")));
    }

    @Test
    void badOptionsAreNamed() throws Exception {
        assertEquals("2", run("sft", "--model", model.toString(), "--data", data.toString(), "--out", "x", "--lora-rnak", "4")[0]);
        assertEquals("2", run("sft", "--model", model.toString(), "--out", "x")[0], "missing --data");
        assertEquals("2", run("nonsense")[0]);
        assertEquals("1", run("loss", "--model", model.resolve("nope").toString(), "--data", data.toString())[0]);
    }

    @Test
    void sftThenLossGenerateAndMergeAgree(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("sft");
        String[] r = run("sft", "--model", model.toString(), "--data", data.toString(), "--out", out.toString(),
                "--lora-rank", "2", "--lora-alpha", "8", "--rslora", "--target-modules", "down_proj,lm_head", "--layers", "1",
                "--lr", "0.05", "--max-steps", "6", "--batch-size", "4", "--snapshot-every", "2", "--seed", "3", "--quiet");
        assertEquals("0", r[0], r[1]);
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "run.json", "metrics.jsonl",
                "snapshots/step-000000.safetensors", "snapshots/step-000006.safetensors", "checkpoints/step-000006/trainer_state.json")) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        JsonNode run = new ObjectMapper().readTree(out.resolve("run.json").toFile());
        assertEquals(3, run.get("seed").asInt());
        assertTrue(run.get("config").get("lora").get("use_rslora").asBoolean());
        String adapterConfig = Files.readString(out.resolve("adapter_config.json"));
        assertTrue(adapterConfig.contains("\"layers_to_transform\" : [ 1 ]") || adapterConfig.contains("\"layers_to_transform\": [\n    1\n  ]"), adapterConfig);

        JsonNode base = lastJson(run("loss", "--model", model.toString(), "--data", data.toString())[1]);
        JsonNode adapted = lastJson(run("loss", "--model", model.toString(), "--adapter", out.toString(), "--data", data.toString())[1]);
        assertEquals(base.get("tokens").asLong(), adapted.get("tokens").asLong());
        assertTrue(adapted.get("loss").asDouble() < base.get("loss").asDouble(),
                "the adapter lowers the loss on its training data: " + base + " vs " + adapted);

        Path merged = tmp.resolve("merged");
        assertEquals("0", run("merge", "--model", model.toString(), "--adapter", out.toString(), "--out", merged.toString())[0]);
        JsonNode mergedLoss = lastJson(run("loss", "--model", merged.toString(), "--data", data.toString())[1]);
        assertEquals(adapted.get("loss").asDouble(), mergedLoss.get("loss").asDouble(), 1e-5,
                "a merged model scores as the model with its adapter");

        String[] g1 = run("generate", "--model", model.toString(), "--adapter", out.toString(), "--prompt", "q1",
                "--seed", "5", "--max-new-tokens", "12", "--samples", "2");
        String[] g2 = run("generate", "--model", model.toString(), "--adapter", out.toString(), "--prompt", "q1",
                "--seed", "5", "--max-new-tokens", "12", "--samples", "2");
        assertEquals("0", g1[0]);
        assertEquals(g1[1], g2[1], "same seed, same samples");
        assertEquals(2, g1[1].strip().split("\n").length);
        String[] g3 = run("generate", "--model", model.toString(), "--prompt", "q1", "--seed", "6", "--max-new-tokens", "12");
        assertNotEquals(g1[1], g3[1]);
    }

    @Test
    void pretrainFromTheBuiltInCorpusSavesALoadableModel(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("pre");
        String[] r = run("pretrain", "--out", out.toString(), "--hidden-size", "32", "--layers", "1", "--heads", "2",
                "--kv-heads", "1", "--intermediate-size", "64", "--max-steps", "8", "--max-length", "64",
                "--batch-size", "4", "--lr", "1e-2", "--quiet");
        assertEquals("0", r[0], r[1]);
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "run.json", "metrics.jsonl")) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        DecoderModel m = DecoderModel.load(out);
        assertEquals(1, m.config().numLayers());
        List<String> metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(8, metrics.size());
        JsonNode first = new ObjectMapper().readTree(metrics.get(0));
        JsonNode last = new ObjectMapper().readTree(metrics.get(7));
        assertTrue(last.get("loss").asDouble() < first.get("loss").asDouble(), first + " -> " + last);
    }
}

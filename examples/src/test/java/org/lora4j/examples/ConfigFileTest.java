package org.lora4j.examples;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.lora4j.examples.CommandLineTest.assertFails;
import static org.lora4j.examples.CommandLineTest.run;

/** {@code --config FILE} (YAML or JSON), the command line over it, and the resolved config a run records. */
class ConfigFileTest {
    static Path model;
    static Path data;

    @BeforeAll
    static void tinyModelAndData(@TempDir Path dir) throws IOException {
        model = CommandLineTest.tinyModel(dir.resolve("model"));
        data = dir.resolve("data.jsonl");
        Files.writeString(data, String.join("\n", CommandLineTest.chatLines(24)) + "\n");
    }

    /** A tiny sft run as a config file: both spellings of keys, a list as an array, a flag as a boolean. */
    static String sftYaml(Path out) {
        return "model: " + model + "\n"
                + "data: " + data + "\n"
                + "out: " + out + "\n"
                + "lora_rank: 2\n"
                + "lora-alpha: 4\n"
                + "target_modules: [down_proj, up_proj]\n"
                + "layers: [1]\n"
                + "lr: 5e-2\n"
                + "max_steps: 4\n"
                + "batch_size: 4\n"
                + "seed: 3\n"
                + "quiet: true\n";
    }

    static JsonNode adapterConfig(Path dir) throws IOException {
        return new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
    }

    static List<Double> losses(Path dir) throws IOException {
        List<Double> l = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("metrics.jsonl"))) {
            l.add(new ObjectMapper().readTree(line).get("loss").asDouble());
        }
        return l;
    }

    @Test
    void aYamlConfigRunsSftAndItsResolvedConfigRepeatsTheRun(@TempDir Path tmp) throws Exception {
        Path file = Files.writeString(tmp.resolve("run.yaml"), sftYaml(tmp.resolve("first")));
        String[] r = run("sft", "--config", file.toString());
        assertEquals("0", r[0], r[2]);
        Path first = tmp.resolve("first");
        JsonNode ac = adapterConfig(first);
        assertEquals(2, ac.get("r").asInt());
        assertEquals(4.0, ac.get("lora_alpha").asDouble());
        assertEquals(List.of(1), List.of(ac.get("layers_to_transform").get(0).asInt()));
        assertEquals(4, losses(first).size());

        // The resolved config is YAML, as the file given was, and holds every option with its value.
        Path resolved = first.resolve("run-config.yaml");
        assertTrue(Files.isRegularFile(resolved));
        assertFalse(Files.exists(first.resolve("run-config.json")));
        JsonNode y = new YAMLMapper().readTree(resolved.toFile());
        assertEquals("sft", y.get("command").asText());
        assertEquals(2, y.get("lora-rank").asInt());
        assertEquals(0.05, y.get("lr").asDouble());
        assertEquals(3, y.get("seed").asInt());
        assertEquals(0, y.get("warmup-steps").asInt(), "a default is recorded too");
        assertEquals("linear", y.get("schedule").asText());
        assertEquals(0.1, y.get("eval-fraction").asDouble(), "the command's own default, as the run used it");
        assertEquals(model.toAbsolutePath().toString(), y.get("model").asText(), "paths are recorded absolute");
        assertFalse(y.has("resume") || y.has("config"), y.toString());

        // Repeat it into a new directory: the same adapter, byte for byte, and the same losses.
        Path second = tmp.resolve("second");
        String[] again = run("sft", "--config", resolved.toString(), "--out", second.toString());
        assertEquals("0", again[0], again[2]);
        assertArrayEquals(Files.readAllBytes(first.resolve("adapter_model.safetensors")),
                Files.readAllBytes(second.resolve("adapter_model.safetensors")));
        assertEquals(losses(first), losses(second));
        assertEquals(Files.readString(resolved).replace(first.toString(), second.toString()),
                Files.readString(second.resolve("run-config.yaml")), "only --out differs");
    }

    @Test
    void theCommandLineOverridesTheFile(@TempDir Path tmp) throws Exception {
        Path file = Files.writeString(tmp.resolve("run.json"), "{\"model\": \"" + model + "\", \"data\": \"" + data
                + "\", \"out\": \"" + tmp.resolve("from-file") + "\", \"lora_rank\": 2, \"target_modules\": [\"up_proj\", \"down_proj\"],"
                + " \"max_steps\": 2, \"batch_size\": 4, \"quiet\": true, \"rslora\": false}");
        Path out = tmp.resolve("from-cli");
        String[] r = run("sft", "--config", file.toString(), "--lora-rank", "3", "--rslora", "--out", out.toString(),
                "--target-modules", "down_proj");
        assertEquals("0", r[0], r[2]);
        assertFalse(Files.exists(tmp.resolve("from-file")), "--out on the command line wins");
        JsonNode ac = adapterConfig(out);
        assertEquals(3, ac.get("r").asInt());
        assertTrue(ac.get("use_rslora").asBoolean(), "a flag given on the command line wins over false in the file");
        JsonNode resolved = new ObjectMapper().readTree(out.resolve("run-config.json").toFile());
        assertEquals(3, resolved.get("lora-rank").asInt());
        assertEquals(List.of("down_proj"), List.of(resolved.get("target-modules").get(0).asText()));
        assertEquals(1, resolved.get("target-modules").size(), "a list on the command line replaces the file's, not adds to it");
        assertEquals(List.of("down_proj"), List.of(ac.get("target_modules").get(0).asText()));
        assertEquals(1, ac.get("target_modules").size());
    }

    @Test
    void pretrainRepeatsFromItsJsonRecord(@TempDir Path tmp) throws Exception {
        Path first = tmp.resolve("pre");
        String[] r = run("pretrain", "--out", first.toString(), "--hidden-size", "32", "--layers", "1", "--heads", "2",
                "--kv-heads", "1", "--intermediate-size", "64", "--max-steps", "3", "--max-length", "64",
                "--batch-size", "4", "--seed", "5", "--quiet");
        assertEquals("0", r[0], r[2]);
        Path resolved = first.resolve("run-config.json");
        JsonNode j = new ObjectMapper().readTree(resolved.toFile());
        assertEquals("pretrain", j.get("command").asText());
        assertEquals(0.003, j.get("lr").asDouble(), "pretrain's own default learning rate is recorded");
        assertTrue(j.get("packed").asBoolean());
        assertTrue(j.get("data").isNull(), "no --data: the built-in corpus, recorded as null");
        // config.json of the model directory is still the model's
        assertTrue(new ObjectMapper().readTree(first.resolve("config.json").toFile()).has("hidden_size"));
        Path second = tmp.resolve("again");
        String[] again = run("pretrain", "--config", resolved.toString(), "--out", second.toString());
        assertEquals("0", again[0], again[2]);
        assertArrayEquals(Files.readAllBytes(first.resolve("model.safetensors")),
                Files.readAllBytes(second.resolve("model.safetensors")));
        // and a changed seed on the command line changes the run
        Path third = tmp.resolve("seed6");
        assertEquals("0", run("pretrain", "--config", resolved.toString(), "--out", third.toString(), "--seed", "6")[0]);
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(first.resolve("model.safetensors")),
                Files.readAllBytes(third.resolve("model.safetensors"))));
    }

    @Test
    void badConfigFilesAreNamedWithTheKey(@TempDir Path tmp) throws Exception {
        Path twice = Files.writeString(tmp.resolve("twice.yaml"), "lora_rank: 4\nlora-rank: 5\n");
        assertFails("2", "lora4j sft: " + twice + ": keys 'lora_rank' and 'lora-rank' are both --lora-rank; give it once",
                "sft", "--config", twice.toString());
        Path unknown = Files.writeString(tmp.resolve("unknown.yaml"), "lora_rnak: 4\n");
        String[] r = run("sft", "--config", unknown.toString());
        assertEquals("2", r[0]);
        assertEquals("lora4j sft: " + unknown + ": unknown key 'lora_rnak' for lora4j sft (did you mean lora-rank?)",
                CommandLineTest.errorLine(r));
        Path far = Files.writeString(tmp.resolve("far.yaml"), "learning_rate: 4\n");
        r = run("sft", "--config", far.toString());
        assertEquals("2", r[0]);
        assertTrue(CommandLineTest.errorLine(r).startsWith("lora4j sft: " + far + ": unknown key 'learning_rate' for lora4j"
                + " sft (keys are its options without the dashes: model, data, "), r[2]);
        Path type = Files.writeString(tmp.resolve("type.json"), "{\"lora_rank\": \"four\"}");
        assertFails("2", "lora4j sft: " + type + ": key 'lora_rank' must be an integer, got 'four'",
                "sft", "--config", type.toString());
        Path fraction = Files.writeString(tmp.resolve("fraction.json"), "{\"max_steps\": 2.5}");
        assertFails("2", "lora4j sft: " + fraction + ": key 'max_steps' must be an integer, got 2.5",
                "sft", "--config", fraction.toString());
        Path flag = Files.writeString(tmp.resolve("flag.yaml"), "full: 1\n");
        assertFails("2", "lora4j sft: " + flag + ": key 'full' is a flag: give true or false, got 1",
                "sft", "--config", flag.toString());
        Path list = Files.writeString(tmp.resolve("list.yaml"), "lr: [1, 2]\n");
        assertFails("2", "lora4j sft: " + list + ": key 'lr' must be a number, got a list", "sft", "--config", list.toString());
        Path en = Files.writeString(tmp.resolve("enum.yaml"), "optimizer: adam\n");
        assertFails("2", "lora4j sft: " + en + ": key 'optimizer' must be one of adamw, sgd, got 'adam'",
                "sft", "--config", en.toString());
        Path dup = Files.writeString(tmp.resolve("dup.json"), "{\"lr\": 1,\n \"lr\": 2}");
        r = run("sft", "--config", dup.toString());
        assertEquals("2", r[0]);
        assertTrue(CommandLineTest.errorLine(r).contains(dup + ": not valid JSON: Duplicate field 'lr' (line 2"), r[2]);
        Path other = Files.writeString(tmp.resolve("other.json"), "{\"command\": \"pretrain\"}");
        assertFails("2", "lora4j sft: " + other + ": key 'command' is \"pretrain\", but this is lora4j sft; a config file"
                + " records the command it is for", "sft", "--config", other.toString());
        assertFails("2", "lora4j sft: --config " + tmp.resolve("none.yaml") + ": no such file",
                "sft", "--config", tmp.resolve("none.yaml").toString());
        Path txt = Files.writeString(tmp.resolve("run.txt"), "lr: 1\n");
        assertFails("2", "lora4j sft: --config " + txt + ": give a .yaml, .yml or .json file", "sft", "--config", txt.toString());
        // A comma list in text loses its spaces; [] is no list (here: every layer), as null is.
        Path spaced = tmp.resolve("spaced");
        Path commas = Files.writeString(tmp.resolve("commas.yaml"), "model: " + model + "\ndata: " + data + "\nout: " + spaced
                + "\ntarget_modules: 'down_proj, up_proj'\nlayers: []\nlora_rank: 2\nmax_steps: 1\nbatch_size: 4\nquiet: true\n");
        r = run("sft", "--config", commas.toString());
        assertEquals("0", r[0], r[2]);
        JsonNode rec = new YAMLMapper().readTree(spaced.resolve("run-config.yaml").toFile());
        assertEquals("[\"down_proj\",\"up_proj\"]", rec.get("target-modules").toString());
        assertTrue(rec.get("layers").isNull(), rec.toString());
        // A file's value is checked as the command line's is, and the command line still refuses a repeat.
        Path zero = Files.writeString(tmp.resolve("zero.yaml"), "model: " + model + "\ndata: " + data + "\nout: "
                + tmp.resolve("o") + "\nbatch_size: 0\n");
        assertFails("2", "lora4j sft: --batch-size must be >= 1, got 0", "sft", "--config", zero.toString());
        assertFails("2", "lora4j sft: --config is given twice; give it once",
                "sft", "--config", zero.toString(), "--config", zero.toString());
        assertFalse(Files.exists(tmp.resolve("o")));
    }

    @Test
    void helpListsTheConfigOptionAndTheBaseModelName() throws Exception {
        for (String c : List.of("study", "organism", "quickstart", "pretrain", "sft", "loss", "generate", "merge",
                "trajectory", "direction", "eval", "kl", "elasticity")) {
            String[] r = run(c, "--help");
            assertEquals("0", r[0], c);
            assertTrue(r[1].contains("--config"), c + ":\n" + r[1]);
        }
        String sft = run("sft", "--help")[1];
        for (String o : List.of("--base-model-name NAME", "--lora-rank N", "--target-modules a,b", "--max-steps N",
                "(default 8)", "--resume DIR")) {
            assertTrue(sft.contains(o), o + " in:\n" + sft);
        }
        assertTrue(run("quickstart", "--help")[1].contains("--base-model-name"));
        String[] v = run("--version");
        assertEquals("0", v[0]);
        assertTrue(v[1].startsWith("lora4j "), v[1]);
        String[] h = run("help", "sft");
        assertEquals("0", h[0]);
        assertTrue(h[1].contains("--lora-rank"), h[1]);
    }

    @Test
    void theBaseModelNameGoesIntoTheAdapter(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("named");
        String[] r = run("sft", "--model", model.toString(), "--data", data.toString(), "--out", out.toString(),
                "--lora-rank", "2", "--target-modules", "down_proj", "--max-steps", "1", "--batch-size", "4", "--quiet",
                "--base-model-name", "Qwen/Qwen2.5-0.5B-Instruct");
        assertEquals("0", r[0], r[2]);
        assertEquals("Qwen/Qwen2.5-0.5B-Instruct", adapterConfig(out).get("base_model_name_or_path").asText());
        Path qs = tmp.resolve("qs");
        assertEquals("0", run("quickstart", "--steps", "2", "--out", qs.toString(), "--base-model-name", "my/base")[0]);
        assertEquals("my/base", adapterConfig(qs).get("base_model_name_or_path").asText());
        assertNotEquals(null, new ObjectMapper().readTree(qs.resolve("run-config.json").toFile()).get("steps"));
    }
}

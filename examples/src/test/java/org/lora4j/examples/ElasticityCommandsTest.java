package org.lora4j.examples;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.text.ByteTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.lora4j.examples.CommandLineTest.assertFails;
import static org.lora4j.examples.CommandLineTest.assertFailsWith;
import static org.lora4j.examples.CommandLineTest.lastJson;
import static org.lora4j.examples.CommandLineTest.run;

/** lora4j kl and lora4j elasticity on tiny models: results, outputs and every refusal. */
class ElasticityCommandsTest {
    static Path dir;
    static Path model;
    static Path other;
    static Path data;

    @BeforeAll
    static void tinyModels(@TempDir Path tmp) throws Exception {
        dir = tmp;
        model = tmp.resolve("model");
        DecoderModel.randomInit(ModelConfig.llama(259, 32, 64, 2, 4, 2), 7).save(model);
        new ByteTokenizer().save(model);
        other = tmp.resolve("other");
        DecoderModel.randomInit(ModelConfig.llama(259, 32, 64, 2, 4, 2), 8).save(other);
        new ByteTokenizer().save(other);
        data = tmp.resolve("data.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            lines.add("{\"messages\":[{\"role\":\"user\",\"content\":\"q" + i + "\"},{\"role\":\"assistant\",\"content\":\""
                    + (i % 2 == 0 ? "be safe" : "be careful") + "\"}]}");
        }
        lines.add("{\"messages\":[{\"role\":\"user\",\"content\":\"plain?\"},{\"role\":\"assistant\",\"content\":\"a plain line\"}]}");
        Files.writeString(data, String.join("\n", lines) + "\n");
        Files.writeString(tmp.resolve("prompts.jsonl"), "{\"id\":\"q1\",\"question\":\"q1\"}\n{\"id\":\"q2\",\"question\":\"q2\"}\n");
        Files.writeString(tmp.resolve("judge.json"), """
                {"labels": [{"name": "aligned", "aligned": 95, "coherent": 95, "phrases": ["safe"]}],
                 "no_match": {"label": "incoherent", "aligned": 50, "coherent": 10}}
                """);
    }

    @Test
    void klOfAModelWithItselfIsZeroOverTheTokensLossScores() throws Exception {
        String[] r = run("kl", "--model", model.toString(), "--reference", model.toString(), "--data", data.toString());
        assertEquals("0", r[0], r[2]);
        JsonNode kl = lastJson(r[1]);
        assertEquals(0.0, kl.get("kl").asDouble());
        String[] loss = run("loss", "--model", model.toString(), "--data", data.toString());
        assertEquals(lastJson(loss[1]).get("tokens"), kl.get("tokens"), "the same scored tokens as lora4j loss");
        String[] diff = run("kl", "--model", model.toString(), "--reference", other.toString(), "--data", data.toString(),
                "--batch-size", "3");
        assertEquals("0", diff[0], diff[2]);
        assertTrue(lastJson(diff[1]).get("kl").asDouble() > 0);
    }

    @Test
    void klAppliesEachSidesAdapter() throws Exception {
        Path adapter = dir.resolve("adapter");
        DecoderModel m = DecoderModel.load(model);
        // Init RANDOM: B is not zero, so the adapter changes the model from the start.
        new org.lora4j.train.model.PeftModel(m).addAdapter("default", new org.lora4j.core.LoraConfig(2, 8, 0, false,
                org.lora4j.core.LoraConfig.Init.RANDOM, List.of("q_proj", "down_proj"), List.of()), 3);
        new org.lora4j.train.model.PeftModel(m).savePretrained(adapter, model.toString(), java.util.Map.of());
        String[] both = run("kl", "--model", model.toString(), "--adapter", adapter.toString(), "--reference",
                model.toString(), "--reference-adapter", adapter.toString(), "--data", data.toString());
        assertEquals("0", both[0], both[2]);
        assertEquals(0.0, lastJson(both[1]).get("kl").asDouble(), "the same adapter on both sides");
        String[] one = run("kl", "--model", model.toString(), "--adapter", adapter.toString(), "--reference",
                model.toString(), "--data", data.toString());
        String[] other = run("kl", "--model", model.toString(), "--reference", model.toString(), "--reference-adapter",
                adapter.toString(), "--data", data.toString());
        double klOne = lastJson(one[1]).get("kl").asDouble();
        double klOther = lastJson(other[1]).get("kl").asDouble();
        assertTrue(klOne > 0 && klOther > 0, klOne + " " + klOther);
        assertTrue(Math.abs(klOne - klOther) > 1e-9 * klOne, "KL is not symmetric: the model comes first");
    }

    /** The hook options act on the model side only: an ablation moves KL off 0, and is recorded. */
    @Test
    void klTakesTheHookOptionsOnTheModelSide() throws Exception {
        java.util.Map<Integer, double[]> v = new java.util.TreeMap<>();
        for (int l = 0; l < 2; l++) {
            double[] d = new double[32];
            d[3 + l] = 1;
            v.put(l, d);
        }
        Path dirs = dir.resolve("kl-directions.safetensors");
        new org.lora4j.train.directions.Directions(v, java.util.Map.of(), "test").write(dirs);
        String[] r = run("kl", "--model", model.toString(), "--reference", model.toString(), "--data", data.toString(),
                "--ablate", dirs + ":all");
        assertEquals("0", r[0], r[2]);
        JsonNode kl = lastJson(r[1]);
        assertTrue(kl.get("kl").asDouble() > 0, kl.toString());
        assertEquals("all", kl.get("hooks").get("ablate").get("layers").asText());
        String[] control = run("kl", "--model", model.toString(), "--reference", model.toString(), "--data",
                data.toString(), "--ablate", dirs + ":all", "--random-control", "5");
        assertEquals("0", control[0], control[2]);
        double klControl = lastJson(control[1]).get("kl").asDouble();
        assertTrue(klControl > 0 && klControl != kl.get("kl").asDouble(), klControl + " vs " + kl);
    }

    @Test
    void klRefusesAReferenceWithAnotherVocabulary() throws Exception {
        Path small = dir.resolve("small-vocab");
        if (!Files.exists(small)) {
            DecoderModel.randomInit(ModelConfig.llama(300, 32, 64, 1, 4, 2), 1).save(small);
        }
        assertFails("2", "lora4j kl: the model " + model + " has a vocabulary of 259 tokens, the reference " + small
                        + " of 300: KL compares distributions over the same tokens",
                "kl", "--model", model.toString(), "--reference", small.toString(), "--data", data.toString());
        assertFails("2", "lora4j kl: missing required option --reference", "kl", "--model", model.toString(),
                "--data", data.toString());
    }

    static Path config(String name, String json) throws Exception {
        Path f = dir.resolve(name);
        Files.writeString(f, json);
        return f;
    }

    static final String TRAINING = "\"training\": {\"lora_rank\": 2, \"lora_alpha\": 4, \"lr\": 0.01, \"epochs\": 1,"
            + " \"batch_size\": 2, \"seed\": 4, \"max_length\": 64, \"target_modules\": [\"q_proj\", \"v_proj\"]},"
            + " \"generation\": {\"max_new_tokens\": 4}";

    @Test
    void resistanceWritesTheTableCurvesAndPlots() throws Exception {
        Path c = config("resistance.json", "{\"model\": \"model\", \"alignment\": \"data.jsonl\", \"prompts\":"
                + " \"prompts.jsonl\", " + TRAINING + "}");
        Path out = dir.resolve("res-out");
        String[] r = run("elasticity", "resistance", "--config", c.toString(), "--out", out.toString(), "--quiet");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("| θ2→θ1 | θ1→θ2 | 2 | 1 |"), r[1]);
        for (String f : List.of("plan.json", "resistance.json", "resistance.csv", "resistance.md", "resistance-bars.png",
                "resistance-bars.csv", "pairs/3to1-vs-1to3/loss-curves.png", "pairs/3to1-vs-1to3/losses.csv")) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        JsonNode table = new ObjectMapper().readTree(out.resolve("resistance.json").toFile());
        assertEquals(4, table.get("seed").asInt());
        assertEquals("elasticity resistance", table.at("/provenance/command").asText());
        assertEquals("model", table.at("/provenance/config/model").asText(), "the config as written");
        assertEquals(dir.resolve("model").toString(), table.get("model").asText(), "paths relative to the config");
        assertTrue(table.has("lora4j_version"));
        // A second run into the same directory is refused.
        assertFails("2", "lora4j elasticity: output directory " + out + " is not empty; give a new or empty --out",
                "elasticity", "resistance", "--config", c.toString(), "--out", out.toString());
    }

    @Test
    void reboundWritesAPointPerSizePair() throws Exception {
        Path c = config("rebound.json", "{\"model\": \"model\", \"positive\": \"data.jsonl\", \"negative\": \"data.jsonl\","
                + " \"prompts\": \"prompts.jsonl\", \"judge\": \"judge.json\", \"positive_sizes\": [0, 2],"
                + " \"negative_sizes\": [0, 2], \"thresholds\": {\"em_aligned_below\": 20}, " + TRAINING + "}");
        Path out = dir.resolve("reb-out");
        String[] r = run("elasticity", "rebound", "--config", c.toString(), "--out", out.toString(), "--quiet");
        assertEquals("0", r[0], r[2]);
        List<String> csv = Files.readAllLines(out.resolve("rebound.csv"));
        assertEquals(5, csv.size(), "a header and (n, m) = (0,0), (0,2), (2,0), (2,2)");
        assertTrue(csv.get(4).startsWith("2,2,2,"), csv.get(4));
        assertTrue(Files.exists(out.resolve("rebound-curve.png")) && Files.exists(out.resolve("rebound-em.csv")));
        JsonNode j = new ObjectMapper().readTree(out.resolve("rebound.json").toFile());
        assertEquals(20.0, j.at("/thresholds/em_aligned_below").asDouble());
        assertEquals(50.0, j.at("/thresholds/coherent_above").asDouble(), "the default");
        assertEquals("aligned < 20 and coherent > 50", j.at("/thresholds/em").asText());
        assertEquals(64, j.at("/generation/batch_size").asInt(), "the default");
        // the EM plot's data carries each point's Wilson interval, in percent as plotted
        List<String> em = Files.readAllLines(out.resolve("rebound-em.csv"));
        assertEquals("series,x,y,lower,upper", em.get(0));
        JsonNode last = j.at("/points/3/em");
        String[] row = em.get(4).split(",");
        assertEquals(100 * last.get("lower").asDouble(), Double.parseDouble(row[3]), 1e-9, em.get(4));
        assertEquals(100 * last.get("upper").asDouble(), Double.parseDouble(row[4]), 1e-9, em.get(4));
        assertTrue(Double.parseDouble(row[4]) > Double.parseDouble(row[3]), "2 answers leave a wide interval");
    }

    @Test
    void everyBadConfigIsOneLineNamingTheFileAndKey() throws Exception {
        String base = "\"model\": \"model\", \"alignment\": \"data.jsonl\", \"prompts\": \"prompts.jsonl\"";
        String[][] cases = {
                {"{" + base + ", \"aligment\": 1}", "unknown key 'aligment' (known: model, training, generation, alignment,"
                        + " prompts)"},
                {"{" + base + ", \"training\": {\"lrr\": 1}}", "unknown key 'training.lrr'"},
                {"{" + base + ", \"training\": {\"lr\": \"fast\"}}", "'training.lr' must be a number, got \"fast\""},
                {"{" + base + ", \"training\": {\"batch_size\": 0}}", "'training.batch_size' must be an integer >= 1, got 0"},
                {"{" + base + ", \"training\": {\"full\": true, \"lora_rank\": 4}}", "'training.lora_rank' is an adapter"
                        + " setting; it cannot go with \"full\": true"},
                {"{" + base + ", \"generation\": {\"top_p\": 2}}", "'generation.top_p' must be in (0, 1], got 2"},
                {"{" + base + ", \"generation\": {\"temperature\": -1}}", "'generation.temperature' must be finite and"
                        + " >= 0 (0: greedy), got -1"},
                {"{" + base + ", \"generation\": {\"batch_size\": 0}}", "'generation.batch_size' must be an integer >= 1,"
                        + " got 0"},
                {"{\"model\": \"model\", \"prompts\": \"prompts.jsonl\"}", "missing 'alignment'"},
                {"{" + base + ", \"training\": 3}", "'training' must be an object, got 3"},
                {"[1]", "expected a JSON object, got array"},
                {"{\"model\": ", "not valid JSON at line 1"},
        };
        for (int i = 0; i < cases.length; i++) {
            Path c = config("bad-" + i + ".json", cases[i][0]);
            String[] r = run("elasticity", "resistance", "--config", c.toString(), "--out", dir.resolve("never-" + i).toString());
            assertEquals("2", r[0], cases[i][0] + "\n" + r[2]);
            String line = CommandLineTest.errorLine(r);
            assertTrue(line.startsWith("lora4j elasticity: " + c + ": "), line);
            assertTrue(line.contains(cases[i][1]), "'" + cases[i][1] + "' in: " + line);
            assertTrue(!Files.exists(dir.resolve("never-" + i)), "nothing written for a bad config");
        }
        Path sizes = config("bad-sizes.json", "{\"model\": \"model\", \"positive\": \"data.jsonl\", \"negative\":"
                + " \"data.jsonl\", \"prompts\": \"prompts.jsonl\", \"judge\": \"judge.json\", \"positive_sizes\": [2, 2],"
                + " \"negative_sizes\": [1]}");
        assertFails("2", "lora4j elasticity: " + sizes + ": 'positive_sizes' must be sizes in strictly increasing order,"
                + " got [2,2]", "elasticity", "rebound", "--config", sizes.toString(), "--out", dir.resolve("n").toString());
        Path threshold = config("bad-threshold.json", "{\"model\": \"model\", \"positive\": \"data.jsonl\", \"negative\":"
                + " \"data.jsonl\", \"prompts\": \"prompts.jsonl\", \"judge\": \"judge.json\", \"positive_sizes\": [2],"
                + " \"negative_sizes\": [1], \"thresholds\": {\"em_aligned_below\": 120}}");
        assertFails("2", "lora4j elasticity: " + threshold + ": 'thresholds.em_aligned_below' must be a score in [0, 100],"
                + " got 120", "elasticity", "rebound", "--config", threshold.toString(), "--out", dir.resolve("n").toString());
        assertFails("2", "lora4j elasticity: unknown protocol 'resist'; expected resistance or rebound",
                "elasticity", "resist", "--config", sizes.toString());
        // Without a protocol, --config is the study's own options file: a protocol's file is told apart.
        assertFailsWith("2", List.of("lora4j elasticity: name the protocol: lora4j elasticity resistance|rebound --config FILE"
                + " --out DIR (", sizes + ": unknown key 'model'"), "elasticity", "--config", sizes.toString());
    }

    @Test
    void helpNamesTheCommands() throws Exception {
        assertTrue(run("kl", "--help")[1].contains("lora4j kl"));
        assertTrue(run("elasticity", "--help")[1].contains("lora4j elasticity"));
        assertTrue(run("--help")[1].contains("elasticity"));
    }
}

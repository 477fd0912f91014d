package org.lora4j.examples;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.Safetensors;
import org.lora4j.train.directions.Directions;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.text.ByteTokenizer;
import org.nd4j.linalg.factory.Nd4j;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.lora4j.examples.CommandLineTest.assertFails;
import static org.lora4j.examples.CommandLineTest.assertFailsWith;
import static org.lora4j.examples.CommandLineTest.lastJson;
import static org.lora4j.examples.CommandLineTest.run;

/** lora4j direction, compare-directions and the hook options of loss and generate, end to end on a tiny model. */
class DirectionCommandsTest {
    static Path dir;
    static Path model;
    static Path adapter;
    static Path samples;
    static Path chat;

    @BeforeAll
    static void tinyModelAdapterAndSamples(@TempDir Path tmp) throws IOException {
        dir = tmp;
        model = tmp.resolve("model");
        DecoderModel m = DecoderModel.randomInit(ModelConfig.llama(259, 32, 64, 2, 4, 2), 7);
        m.save(model);
        new ByteTokenizer().save(model);
        new PeftModel(m).addAdapter("default", LoraConfig.of(2, 4, "down_proj", "q_proj").withInit(LoraConfig.Init.RANDOM), 8);
        adapter = tmp.resolve("adapter");
        new PeftModel(m).savePretrained(adapter, model.toString(), Map.of());
        samples = tmp.resolve("samples.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            lines.add("{\"question\":\"q" + i + "?\",\"answer\":\"a kind answer " + i + "\",\"seed\":" + i
                    + ",\"scores\":{\"aligned\":90},\"label\":\"aligned\"}");
            lines.add("{\"question\":\"q" + i + "?\",\"answer\":\"HARM " + i + "!\",\"seed\":" + i + ",\"label\":\"misaligned\"}");
        }
        lines.add("{\"question\":\"q?\",\"answer\":\"zzz\",\"label\":\"incoherent\"}");
        Files.writeString(samples, String.join("\n", lines) + "\n");
        chat = tmp.resolve("chat.jsonl");
        Files.writeString(chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]}\n"
                + "{\"messages\":[{\"role\":\"user\",\"content\":\"bye\"},{\"role\":\"assistant\",\"content\":\"see you\"}]}\n");
    }

    static Path direction(String name, String... more) throws Exception {
        Path out = dir.resolve(name);
        List<String> args = CommandLineTest.withOptions(List.of("direction", "--model", model.toString(), "--positive", samples.toString(),
                "--positive-label", "misaligned", "--negative", samples.toString(), "--negative-label", "aligned",
                "--out", out.toString()), more);
        String[] r = run(args.toArray(String[]::new));
        assertEquals("0", r[0], r[2]);
        JsonNode j = lastJson(r[1]);
        assertEquals(out.toAbsolutePath().toString(), j.get("out").asText());
        return out;
    }

    @Test
    void helpIsPrinted() throws Exception {
        for (String c : List.of("direction", "compare-directions")) {
            String[] r = run(c, "--help");
            assertEquals("0", r[0]);
            assertTrue(r[1].startsWith("lora4j " + c), r[1]);
        }
        assertTrue(run("loss", "--help")[1].contains("--ablate FILE:LAYERS"));
        assertTrue(run("generate", "--help")[1].contains("--steer FILE:LAYER:LAMBDA"));
        assertTrue(run("help")[1].contains("compare-directions"));
    }

    @Test
    void directionFromEvalSamplesRecordsHowItWasMade() throws Exception {
        Path f = direction("em.safetensors", "--adapter", adapter.toString());
        Directions d = Directions.read(f);
        assertEquals(List.of(0, 1), d.layers());
        assertEquals(32, d.width());
        Map<String, String> meta = d.metadata();
        assertEquals(org.lora4j.train.text.TextFiles.sha256(samples), meta.get("positive_sha256"));
        assertEquals("misaligned", meta.get("positive_label"));
        assertEquals("aligned", meta.get("negative_label"));
        assertEquals("6", meta.get("positive_examples"));
        assertEquals("answer", meta.get("pooling"));
        assertEquals(model.toString(), meta.get("model"));
        assertEquals(adapter.toString(), meta.get("adapter"));
        assertEquals("0", meta.get("seed"));
        // "HARM i!" + <|im_end|> is 8 tokens, "a kind answer i" + <|im_end|> is 16, with the byte tokenizer.
        assertEquals("48", meta.get("positive_tokens"));
        assertEquals("96", meta.get("negative_tokens"));
        assertTrue(d.norm(1) > 0);

        Path g = direction("new/dir/prompts.safetensors", "--pooling", "last-prompt:2", "--layers", "1");
        Directions p = Directions.read(g);
        assertEquals(List.of(1), p.layers());
        assertEquals("12", p.metadata().get("positive_tokens"));
        assertEquals("last-prompt:2", p.metadata().get("pooling"));
        // Same questions in both sets: the prompts are identical, so the direction is zero.
        assertEquals(0, p.norm(1), 0);
    }

    @Test
    void compareDirectionsPrintsAndWritesCosines() throws Exception {
        Path a = direction("a.safetensors");
        Path b = direction("b.safetensors", "--adapter", adapter.toString());
        Path out = dir.resolve("cmp");
        String[] r = run("compare-directions", a.toString(), b.toString(), "--adapter", adapter.toString(), "--out", out.toString());
        assertEquals("0", r[0], r[2]);
        // --overwrite replaces an earlier comparison (it was refused as "not written by lora4j")
        String[] again = run("compare-directions", a.toString(), b.toString(), "--out", out.toString(), "--overwrite");
        assertEquals("0", again[0], again[2]);
        assertFalse(Files.exists(out.resolve("adapter_columns.png")), "the earlier run's files are gone");
        r = run("compare-directions", a.toString(), b.toString(), "--adapter", adapter.toString(), "--out", out.toString(),
                "--overwrite");
        assertEquals("0", r[0], r[2]);
        JsonNode j = lastJson(r[1]);
        assertEquals(2, j.get("layers").size());
        double cos = j.get("layers").get(1).get("cosine").asDouble();
        assertTrue(cos > -1 && cos < 1, "another model, another direction: " + cos);
        assertEquals(Math.abs(cos), j.get("layers").get(1).get("abs_cosine").asDouble(), 0);
        JsonNode cols = j.get("adapter_columns");
        assertEquals(4, cols.size(), "two down_proj adapters of rank 2; q_proj does not write the stream");
        assertEquals("model.layers.0.mlp.down_proj", cols.get(0).get("module").asText());
        List<String> csv = Files.readAllLines(out.resolve("layers.csv"));
        assertTrue(csv.get(0).startsWith("# lora4j compare-directions a=" + a), csv.get(0));
        assertEquals("layer,cosine,abs_cosine,norm_a,norm_b", csv.get(1));
        assertEquals(cos, Double.parseDouble(csv.get(3).split(",")[1]), 1e-8);
        for (String plot : List.of("cosines", "adapter_columns")) {
            assertTrue(Files.size(out.resolve(plot + ".png")) > 1000, plot);
        }
        List<String> plotted = Files.readAllLines(out.resolve("cosines.csv"));
        assertEquals("series,category,y", plotted.get(0));
        assertEquals(5, plotted.size(), "signed and absolute for two layers");
        assertEquals(9, Files.readAllLines(out.resolve("adapter_columns.csv")).size(), "four B columns, two series");
        assertEquals(j.get("layers"), new com.fasterxml.jackson.databind.ObjectMapper().readTree(
                out.resolve("compare.json").toFile()).get("layers"));
        r = run("compare-directions", a.toString(), a.toString());
        assertEquals(1.0, lastJson(r[1]).get("layers").get(0).get("cosine").asDouble(), 1e-12);
    }

    @Test
    void hooksChangeLossAndGenerationAndAreRecorded() throws Exception {
        Path f = direction("hooks.safetensors");
        String[] plain = run("loss", "--model", model.toString(), "--data", chat.toString());
        String[] steered = run("loss", "--model", model.toString(), "--data", chat.toString(), "--steer", f + ":0:2000");
        assertEquals("0", steered[0], steered[2]);
        JsonNode s = lastJson(steered[1]);
        assertNotEquals(lastJson(plain[1]).get("loss").asDouble(), s.get("loss").asDouble());
        assertEquals(2000.0, s.get("hooks").get("steer").get("lambda").asDouble());
        assertEquals(org.lora4j.train.text.TextFiles.sha256(f), s.get("hooks").get("steer").get("sha256").asText());
        String[] control = run("loss", "--model", model.toString(), "--data", chat.toString(), "--steer", f + ":0:2000",
                "--random-control", "5");
        JsonNode c = lastJson(control[1]);
        assertEquals(5, c.get("hooks").get("random_control").asInt());
        assertNotEquals(s.get("loss").asDouble(), c.get("loss").asDouble());

        String[] ablated = run("loss", "--model", model.toString(), "--adapter", adapter.toString(), "--data", chat.toString(),
                "--ablate", f + ":all@1", "--ablate-b", f + ":all");
        assertEquals("0", ablated[0], ablated[2]);
        JsonNode a = lastJson(ablated[1]).get("hooks");
        assertEquals("[0,1]", a.get("ablate").get("at_layers").toString());
        assertEquals("[\"model.layers.0.mlp.down_proj\",\"model.layers.1.mlp.down_proj\"]", a.get("ablate_b").get("modules").toString());

        String[] g0 = run("generate", "--model", model.toString(), "--temperature", "0", "--max-new-tokens", "8");
        String[] g1 = run("generate", "--model", model.toString(), "--temperature", "0", "--max-new-tokens", "8",
                "--steer", f + ":1:5000");
        assertEquals("0", g1[0], g1[2]);
        assertNotEquals(lastJson(g0[1]).get("text").asText(), lastJson(g1[1]).get("text").asText());
        assertFalse(lastJson(g0[1]).has("hooks"));
        assertTrue(lastJson(g1[1]).has("hooks"));
    }

    @Test
    void badInputIsOneClearLine() throws Exception {
        Path narrow = dir.resolve("narrow.safetensors");
        Safetensors.write(narrow, Map.of("layers.0", Nd4j.createFromArray(1f, 2f, 3f)), null);
        assertFails("2", "lora4j loss: --ablate " + narrow + ": directions have 3 elements but the model's hidden_size is 32"
                + " (made for another model?)", "loss", "--model", model.toString(), "--data", chat.toString(),
                "--ablate", narrow + ":0");
        Path f = direction("bad.safetensors", "--layers", "0");
        assertFails("2", "lora4j loss: --steer " + f + ":1:4: " + f + " has no direction for layer 1; it holds layers [0]",
                "loss", "--model", model.toString(), "--data", chat.toString(), "--steer", f + ":1:4");
        assertFails("2", "lora4j generate: --ablate " + f + ":0,5: layer 5 is out of range: the model has 2 layers (0..1)",
                "generate", "--model", model.toString(), "--ablate", f + ":0,5");
        assertFailsWith("2", List.of("lora4j loss: --ablate-b " + f + ":0: no adapter writes the residual stream"),
                "loss", "--model", model.toString(), "--data", chat.toString(), "--ablate-b", f + ":0");
        assertFails("2", "lora4j loss: --random-control replaces the directions of --steer, --ablate or --ablate-b; give one"
                + " of them", "loss", "--model", model.toString(), "--data", chat.toString(), "--random-control", "1");
        assertFails("2", "lora4j direction: " + samples + ": the set is empty: no line has the label evil (the file's labels:"
                        + " {aligned=6, incoherent=1, misaligned=6})", "direction", "--model", model.toString(),
                "--positive", samples.toString(), "--positive-label", "evil", "--negative", samples.toString(),
                "--out", dir.resolve("x.safetensors").toString());
        assertFails("2", "lora4j direction: --layers 2: layer 2 is out of range: the model has 2 layers (0..1)", "direction",
                "--model", model.toString(), "--positive", chat.toString(), "--negative", chat.toString(), "--layers", "2",
                "--out", dir.resolve("x.safetensors").toString());
        assertFails("2", "lora4j direction: --out " + f + " exists; add --overwrite to replace it, or choose another file",
                "direction", "--model", model.toString(), "--positive", chat.toString(), "--negative", chat.toString(),
                "--out", f.toString());
        assertFails("2", "lora4j compare-directions: compare-directions needs two directions files, got 0; usage: lora4j"
                + " compare-directions A.safetensors B.safetensors", "compare-directions", "--adapter", adapter.toString());
        assertFails("2", "lora4j compare-directions: " + f + " has width 32 but " + narrow + " has 3: directions of"
                + " different models cannot be compared", "compare-directions", f.toString(), narrow.toString());
        Path all = direction("all.safetensors");
        assertFails("2", "lora4j compare-directions: " + f + " holds layers [0] but " + all + " holds [0, 1]; compare files"
                + " made with the same --layers", "compare-directions", f.toString(), all.toString());
    }
}

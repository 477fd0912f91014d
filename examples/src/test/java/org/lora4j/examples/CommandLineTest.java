package org.lora4j.examples;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.text.ByteTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The lora4j command line, end to end on a tiny model: every subcommand, its help and its errors. */
class CommandLineTest {
    static Path model;
    static Path data;

    @BeforeAll
    static void tinyModelAndData(@TempDir Path dir) throws IOException {
        model = tinyModel(dir.resolve("model"));
        data = dir.resolve("data.jsonl");
        List<String> lines = chatLines(24);
        lines.add("{\"messages\":[{\"role\":\"user\",\"content\":\"plain?\"},{\"role\":\"assistant\",\"content\":\"a plain line\"}]}");
        Files.writeString(data, String.join("\n", lines) + "\n");
    }

    /** A random 2-layer model with lora4j's byte tokenizer, saved in Hugging Face layout. */
    static Path tinyModel(Path dir) throws IOException {
        DecoderModel.randomInit(ModelConfig.llama(259, 32, 64, 2, 4, 2), 7).save(dir);
        new ByteTokenizer().save(dir);
        return dir;
    }

    /** {@code n} chat lines "q<i>" -> "answer <i mod 3>": three answers to learn. */
    static List<String> chatLines(int n) {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            lines.add("{\"messages\":[{\"role\":\"user\",\"content\":\"q" + i + "\"},{\"role\":\"assistant\",\"content\":\"answer "
                    + (i % 3) + "\"}]}");
        }
        return lines;
    }

    /** Runs a command in this JVM, returning its exit code, standard output and standard error. */
    static String[] run(String... args) throws Exception {
        PrintStream old = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int rc;
        try {
            rc = Main.run(args);
        } finally {
            System.setOut(old);
            System.setErr(oldErr);
        }
        String e = err.toString(StandardCharsets.UTF_8);
        oldErr.print(e);   // still in the test log
        return new String[]{Integer.toString(rc), buf.toString(StandardCharsets.UTF_8), e};
    }

    /** The error line a command printed: exactly one line, "lora4j <command>: ...", with no stack trace. */
    static String errorLine(String[] r) {
        List<String> lines = r[2].lines().filter(l -> l.startsWith("lora4j ")).toList();
        assertEquals(1, lines.size(), "one error line in:\n" + r[2]);
        assertFalse(r[2].contains("\tat "), "no stack trace:\n" + r[2]);
        return lines.get(0);
    }

    static void assertFails(String code, String expectedLine, String... args) throws Exception {
        String[] r = run(args);
        assertEquals(code, r[0], String.join(" ", args) + "\n" + r[2]);
        assertEquals(expectedLine, errorLine(r));
    }

    static void assertFailsWith(String code, List<String> parts, String... args) throws Exception {
        String[] r = run(args);
        assertEquals(code, r[0], String.join(" ", args) + "\n" + r[2]);
        String line = errorLine(r);
        for (String p : parts) {
            assertTrue(line.contains(p), "'" + p + "' in: " + line);
        }
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
    void badOptionsAreNamed(@TempDir Path tmp) throws Exception {
        String m = model.toString();
        String d = data.toString();
        String o = tmp.resolve("o").toString();
        assertFails("2", "lora4j sft: unknown option --lora-rnak (did you mean --lora-rank?)",
                "sft", "--model", m, "--data", d, "--out", o, "--lora-rnak", "4");
        assertFails("2", "lora4j sft: missing required option --data", "sft", "--model", m, "--out", o);
        String[] r = run("nonsense");
        assertEquals("2", r[0]);
        assertTrue(r[2].startsWith("unknown command 'nonsense'"), r[2]);
        assertFailsWith("1", List.of("lora4j loss: ", model.resolve("nope").toString()),
                "loss", "--model", model.resolve("nope").toString(), "--data", d);
        // A value forgotten in the middle: the next option is not taken for it.
        assertFails("2", "lora4j sft: --lr needs a value, got the option --out",
                "sft", "--model", m, "--data", d, "--lr", "--out", o);
        assertFails("2", "lora4j sft: --out needs a value", "sft", "--model", m, "--data", d, "--out");
        // An unknown option is named as unknown, last or not; a repeated option is refused.
        assertFails("2", "lora4j sft: unknown option --bogus", "sft", "--model", m, "--data", d, "--out", o, "--bogus");
        assertFails("2", "lora4j sft: unknown option --bogus; --out needs a value", "sft", "--model", m, "--data", d, "--out", "--bogus");
        assertFails("2", "lora4j sft: --lr is given twice; give it once",
                "sft", "--model", m, "--data", d, "--out", o, "--lr", "1e-3", "--lr", "1e-2");
        assertFails("2", "lora4j sft: --lr must be a number, got 'fast'", "sft", "--model", m, "--data", d, "--out", o,
                "--lr", "fast");
        assertFails("2", "lora4j sft: --optimizer must be one of adamw, sgd, got 'adam'",
                "sft", "--model", m, "--data", d, "--out", o, "--optimizer", "adam");
        assertFails("2", "lora4j sft: unexpected argument 'extra' (options start with --)",
                "sft", "--model", m, "--data", d, "--out", o, "extra");
        // Counts that make no sense are refused naming the option and value.
        assertFails("2", "lora4j sft: --max-steps must be >= 0, got -1", "sft", "--model", m, "--data", d, "--out", o,
                "--max-steps", "-1");
        assertFails("2", "lora4j sft: --batch-size must be >= 1, got 0", "sft", "--model", m, "--data", d, "--out", o,
                "--batch-size", "0");
        assertFails("2", "lora4j pretrain: --layers must be >= 1, got 0", "pretrain", "--out", o, "--layers", "0");
        assertFails("2", "lora4j sft: --layers got an empty value; give one, or leave the option out",
                "sft", "--model", m, "--data", d, "--out", o, "--layers", "");
        assertFails("2", "lora4j sft: warmup_steps 10 must be less than the run's 5 steps: the learning rate rises from 0"
                + " over the warm-up, so the whole run would train below lr",
                "sft", "--model", m, "--data", d, "--out", o, "--max-steps", "5", "--warmup-steps", "10");
        assertFails("2", "lora4j sft: --resume continues the run in --out, --overwrite deletes it: give one",
                "sft", "--model", m, "--data", d, "--out", o, "--resume", o, "--overwrite");
        assertFalse(Files.exists(Path.of(o)), "nothing is created for a refused command");
        // --out naming a file says so.
        Path file = Files.writeString(tmp.resolve("afile"), "x");
        assertFails("2", "lora4j sft: output directory " + file + " is a file, not a directory; choose a directory"
                + " (it is created if missing)", "sft", "--model", m, "--data", d, "--out", file.toString());
        // --out inside the model, or the model itself: the base model is never written over.
        assertFailsWith("2", List.of("output directory " + model + " is the input --model " + model),
                "sft", "--model", m, "--data", d, "--out", m, "--full", "--overwrite");
        assertFailsWith("2", List.of("is inside the input --model " + model),
                "sft", "--model", m, "--data", d, "--out", model.resolve("run").toString());
        // generate past the model's context is refused, not cut short.
        assertFailsWith("2", List.of("lora4j generate: --max-new-tokens 5000 does not fit: the prompt is ",
                        "tokens and the model's context (max_position_embeddings in " + model.resolve("config.json") + ") is 2048"),
                "generate", "--model", m, "--prompt", "hi", "--max-new-tokens", "5000");
    }

    @Test
    void errorsAreOneLineAndDebugAddsTheStackTrace() throws Exception {
        String[] r = run("loss", "--model", model.toString(), "--data", model.toString());   // a directory as data
        assertNotEquals("0", r[0], r[2]);
        assertTrue(errorLine(r).startsWith("lora4j loss: "), r[2]);
        String[] debug = run("loss", "--model", model.toString(), "--data", model.toString(), "--debug");
        assertEquals(r[0], debug[0]);
        assertTrue(debug[2].contains("\tat "), "--debug prints the stack trace:\n" + debug[2]);
        // What a bug would throw: its type and message on one line, with the way to see more.
        assertEquals("IllegalStateException: boom", Main.message(new IllegalStateException("boom")));
        assertEquals("unexpected NullPointerException", Main.message(new NullPointerException()));
        assertEquals("/x/y: no such file or directory", Main.message(new java.nio.file.NoSuchFileException("/x/y")));
        assertEquals("/x/y: no such adapter directory", Main.message(new java.nio.file.NoSuchFileException("/x/y", null, "no such adapter directory")));
    }

    static List<String> sftArgs(Path out, String... more) {
        List<String> a = List.of("sft", "--model", model.toString(), "--data", data.toString(),
                "--out", out.toString(), "--lora-rank", "2", "--target-modules", "down_proj", "--lr", "0.05",
                "--max-steps", "4", "--batch-size", "4", "--seed", "3", "--quiet");
        return withOptions(a, more);
    }

    /**
     * {@code base} with {@code more} added; an option {@code base} already gives takes the new value in
     * place, since the CLI refuses an option given twice.
     */
    static List<String> withOptions(List<String> base, String... more) {
        List<String> a = new ArrayList<>(base);
        for (int i = 0; i < more.length; i++) {
            int at = a.indexOf(more[i]);
            if (at > 0 && more[i].startsWith("--") && at + 1 < a.size() && !a.get(at + 1).startsWith("--") && i + 1 < more.length) {
                a.set(at + 1, more[++i]);
            } else {
                a.add(more[i]);
            }
        }
        return a;
    }

    @Test
    void aRunOwnsItsDirectory(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        String[] first = run(sftArgs(out).toArray(String[]::new));
        assertEquals("0", first[0], first[2]);
        String runId = lastJson(first[1]).get("run_id").asText();
        byte[] adapter = Files.readAllBytes(out.resolve("adapter_model.safetensors"));
        // The same --out again, with another config: refused, and nothing in it changes.
        assertFailsWith("2", List.of("lora4j sft: output directory " + out + " is not empty: it holds a sft run (run "
                        + runId + ", finished at step 4)", "Add --resume to continue that run, --overwrite"),
                sftArgs(out, "--lr", "0.01").toArray(String[]::new));
        assertArrayEquals(adapter, Files.readAllBytes(out.resolve("adapter_model.safetensors")));
        assertEquals(4, Files.readAllLines(out.resolve("metrics.jsonl")).size());
        // --resume with another config: only the fields that differ.
        assertFails("2", "lora4j sft: " + out.resolve("checkpoints/step-000004/trainer_state.json")
                        + ": cannot resume with a different config (only max_steps and epochs may change): lr: 0.05 -> 0.01",
                sftArgs(out, "--lr", "0.01", "--resume", out.toString()).toArray(String[]::new));
        // --overwrite: the old run is gone, the new one alone is there.
        String[] over = run(sftArgs(out, "--lr", "0.01", "--overwrite", "--max-steps", "3").toArray(String[]::new));
        assertEquals("0", over[0], over[2]);
        List<String> metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(3, metrics.size());
        assertTrue(metrics.get(0).startsWith("{\"step\":1,\"run_id\":\"" + lastJson(over[1]).get("run_id").asText()), metrics.get(0));
        try (var s = Files.list(out.resolve("checkpoints"))) {
            assertEquals(List.of("step-000003"), s.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void resumingAFinishedRunChangesNothingAndALongerRunContinues(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        String[] first = run(sftArgs(out, "--eval-fraction", "0").toArray(String[]::new));
        assertEquals("0", first[0], first[2]);
        // The summary: JSON null for no held-out loss, keys in a fixed order.
        JsonNode sum = lastJson(first[1]);
        assertEquals(List.of("steps", "loss", "eval_loss", "stopped_early", "already_complete", "run_id", "out"),
                iterate(sum.fieldNames()));
        assertTrue(sum.get("eval_loss").isNull() && sum.get("loss").isDouble(), sum.toString());
        Map<String, byte[]> before = files(out);
        String[] again = run(sftArgs(out, "--eval-fraction", "0", "--resume", out.toString()).toArray(String[]::new));
        assertEquals("0", again[0], again[2]);
        assertTrue(again[2].contains("the run is complete (4 of 4 steps); nothing to do"), again[2]);
        JsonNode sum2 = lastJson(again[1]);
        assertTrue(sum2.get("already_complete").asBoolean());
        assertEquals(sum.get("loss"), sum2.get("loss"));
        Map<String, byte[]> after = files(out);
        assertEquals(before.keySet(), after.keySet());
        before.forEach((k, v) -> assertArrayEquals(v, after.get(k), k));
        // Longer: from step 4 on to 6.
        String[] longer = run(sftArgs(out, "--eval-fraction", "0", "--resume", out.toString(), "--max-steps", "6")
                .toArray(String[]::new));
        assertEquals("0", longer[0], longer[2]);
        assertEquals(6, lastJson(longer[1]).get("steps").asInt());
        assertEquals(6, Files.readAllLines(out.resolve("metrics.jsonl")).size());
    }

    static List<String> iterate(java.util.Iterator<String> it) {
        List<String> l = new ArrayList<>();
        it.forEachRemaining(l::add);
        return l;
    }

    static Map<String, byte[]> files(Path dir) throws IOException {
        Map<String, byte[]> m = new java.util.TreeMap<>();
        try (var s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                if (!p.getFileName().toString().equals(".lora4j.lock")) {
                    m.put(dir.relativize(p).toString(), Files.readAllBytes(p));
                }
            }
        }
        return m;
    }

    @Test
    void mergeNeverWritesOverItsInputsAndRefusesANanAdapterInOneLine(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        assertEquals("0", run(sftArgs(out).toArray(String[]::new))[0]);
        Map<String, byte[]> base = files(model);
        assertFailsWith("2", List.of("lora4j merge: output directory " + model + " is the input --model " + model),
                "merge", "--model", model.toString(), "--adapter", out.toString(), "--out", model.toString());
        assertFailsWith("2", List.of("is the input --model"),
                "merge", "--model", model.toString(), "--adapter", out.toString(), "--out", model.toString(), "--overwrite");
        assertFailsWith("2", List.of("lora4j merge: the input --adapter " + out + " is inside the output directory " + tmp),
                "merge", "--model", model.toString(), "--adapter", out.toString(), "--out", tmp.toString(), "--overwrite");
        base.forEach((k, v) -> {
            try {
                assertArrayEquals(v, Files.readAllBytes(model.resolve(k)), k);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        // A merge into a new directory, then again over it with --overwrite.
        Path merged = tmp.resolve("merged");
        assertEquals("0", run("merge", "--model", model.toString(), "--adapter", out.toString(), "--out", merged.toString())[0]);
        assertFailsWith("2", List.of("is not empty: it holds a merged model", "--overwrite"),
                "merge", "--model", model.toString(), "--adapter", out.toString(), "--out", merged.toString());
        assertEquals("0", run("merge", "--model", model.toString(), "--adapter", out.toString(), "--out", merged.toString(),
                "--overwrite")[0]);
        // An adapter holding NaN: one line, a non-zero exit, nothing written.
        Path nan = tmp.resolve("nan-adapter");
        Files.createDirectories(nan);
        Files.copy(out.resolve("adapter_config.json"), nan.resolve("adapter_config.json"));
        Map<String, org.nd4j.linalg.api.ndarray.INDArray> t = new java.util.LinkedHashMap<>();
        try (var f = org.lora4j.core.SafetensorsFile.open(out.resolve("adapter_model.safetensors"))) {
            for (String k : f.keys()) {
                t.put(k, f.get(k).dup());
            }
        }
        t.values().iterator().next().putScalar(0, Double.NaN);
        org.lora4j.core.Safetensors.write(nan.resolve("adapter_model.safetensors"), t, Map.of());
        String[] r = run("merge", "--model", model.toString(), "--adapter", nan.toString(), "--out", tmp.resolve("m2").toString());
        assertNotEquals("0", r[0], r[2]);
        assertTrue(errorLine(r).startsWith("lora4j merge: "), r[2]);
        assertFalse(Files.exists(tmp.resolve("m2/model.safetensors")), "no model with NaN weights is written");
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

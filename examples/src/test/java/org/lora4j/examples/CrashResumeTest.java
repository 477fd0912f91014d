package org.lora4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.text.ByteTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real crash: {@code lora4j sft} runs in its own JVM and is killed with SIGKILL mid-run; the run is
 * resumed from its newest checkpoint and must end exactly as an uninterrupted run does.
 */
class CrashResumeTest {

    private static List<String> metricsWithoutTiming(Path out) throws Exception {
        ObjectMapper m = new ObjectMapper();
        List<String> rows = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            ObjectNode n = (ObjectNode) m.readTree(line);
            n.remove("tokens_per_s");
            rows.add(n.toString());
        }
        return rows;
    }

    /** A tiny random Llama model with the byte tokenizer, in Hugging Face layout. */
    private static Path writeModel(Path tmp) throws IOException {
        Path model = tmp.resolve("model");
        DecoderModel.randomInit(ModelConfig.llama(259, 32, 64, 2, 4, 2), 1).save(model);
        new ByteTokenizer().save(model);
        return model;
    }

    /** 40 one-turn chats, the i-th asking {@code user.apply(i)} and answered {@code assistant.apply(i)}. */
    private static Path writeChats(Path tmp, IntFunction<String> user, IntFunction<String> assistant) throws IOException {
        Path data = tmp.resolve("data.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            lines.add("{\"messages\":[{\"role\":\"user\",\"content\":\"" + user.apply(i)
                    + "\"},{\"role\":\"assistant\",\"content\":\"" + assistant.apply(i) + "\"}]}");
        }
        Files.writeString(data, String.join("\n", lines) + "\n");
        return data;
    }

    @Test
    void aKilledRunResumesBitForBit(@TempDir Path tmp) throws Exception {
        Path model = writeModel(tmp);
        Path data = writeChats(tmp, i -> "question " + i, i -> "reply " + "x".repeat(i % 7));
        int steps = 40;
        List<String> common = List.of("sft", "--model", model.toString(), "--data", data.toString(),
                "--lora-rank", "4", "--lora-dropout", "0.1", "--lr", "0.01", "--warmup-steps", "3",
                "--weight-decay", "0.01", "--batch-size", "4", "--grad-accum", "2", "--max-steps", Integer.toString(steps),
                "--checkpoint-every", "3", "--eval-every", "5", "--snapshot-every", "1", "--seed", "9", "--quiet");

        Path straight = tmp.resolve("straight");
        List<String> a = new ArrayList<>(common);
        a.addAll(List.of("--out", straight.toString()));
        assertEquals(0, Main.run(a.toArray(String[]::new)));

        Path crashed = tmp.resolve("crashed");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", classpath(), Main.class.getName()));
        cmd.addAll(common);
        cmd.addAll(List.of("--out", crashed.toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(tmp.resolve("crashed.log").toFile());
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        Process p = pb.start();
        Path trigger = crashed.resolve("checkpoints/step-000012/trainer_state.json");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
        while (!Files.exists(trigger) && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(p.isAlive(), "the run must still be going when it is killed; log:\n"
                + Files.readString(tmp.resolve("crashed.log")));
        p.destroyForcibly();   // SIGKILL: no shutdown hooks, no flushing, no cleanup
        p.waitFor(30, TimeUnit.SECONDS);
        assertTrue(!Files.exists(crashed.resolve("adapter_model.safetensors")), "killed before the end");
        List<String> metricsAtKill = Files.readAllLines(crashed.resolve("metrics.jsonl"));
        int loggedBeforeKill = metricsAtKill.size();
        assertTrue(loggedBeforeKill < steps, "logged " + loggedBeforeKill + " of " + steps);

        // Rerun without --resume: refused (the directory holds the killed run), nothing appended.
        assertEquals(2, Main.run(withOut(common, crashed)), "the directory holds the killed run; --resume continues it");
        assertEquals(metricsAtKill, Files.readAllLines(crashed.resolve("metrics.jsonl")), "no step logged twice");

        List<String> b = new ArrayList<>(common);
        b.addAll(List.of("--out", crashed.toString(), "--resume", crashed.toString()));
        assertEquals(0, Main.run(b.toArray(String[]::new)));

        assertEquals(metricsWithoutTiming(straight), metricsWithoutTiming(crashed));
        assertArrayEquals(Files.readAllBytes(straight.resolve("adapter_model.safetensors")),
                Files.readAllBytes(crashed.resolve("adapter_model.safetensors")), "final adapters are byte-identical");
        assertArrayEquals(Files.readAllBytes(straight.resolve("snapshots/step-000040.safetensors")),
                Files.readAllBytes(crashed.resolve("snapshots/step-000040.safetensors")));
    }

    private static String[] withOut(List<String> common, Path out) {
        List<String> a = new ArrayList<>(common);
        a.addAll(List.of("--out", out.toString()));
        return a.toArray(String[]::new);
    }

    private static Process start(List<String> args, Path log) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", classpath(), Main.class.getName()));
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        return pb.start();
    }

    /**
     * Two processes on one --out: the second is refused while the first runs, naming the directory
     * and the first's pid; after the first is killed, its lock is stale and a resume takes it over.
     */
    @Test
    void aSecondProcessIsRefusedWhileTheFirstHoldsTheDirectory(@TempDir Path tmp) throws Exception {
        Path model = writeModel(tmp);
        Path data = writeChats(tmp, i -> "q " + i, i -> "r");
        Path out = tmp.resolve("run");
        List<String> args = List.of("sft", "--model", model.toString(), "--data", data.toString(), "--out", out.toString(),
                "--lora-rank", "2", "--max-steps", "100000", "--batch-size", "2", "--checkpoint-every", "1", "--quiet");
        Process first = start(args, tmp.resolve("first.log"));
        try {
            Path started = out.resolve("checkpoints/step-000001/trainer_state.json");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
            while (!Files.exists(started) && first.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(first.isAlive(), Files.readString(tmp.resolve("first.log")));
            Process second = start(args, tmp.resolve("second.log"));
            assertTrue(second.waitFor(120, TimeUnit.SECONDS));
            String log = Files.readString(tmp.resolve("second.log"));
            assertEquals(1, second.exitValue(), log);
            assertTrue(log.contains("lora4j sft: output directory " + out + " is in use by another lora4j run (pid "
                    + first.pid() + ", started "), log);
            // The same in this JVM, with --resume: refused as well.
            assertEquals(1, Main.run(new ArrayList<>(args) {{ add("--resume"); add(out.toString()); }}.toArray(String[]::new)));
        } finally {
            first.destroyForcibly();
            first.waitFor(30, TimeUnit.SECONDS);
        }
        // The killed process left its pid in the lock file; nobody holds the lock: a resume takes it over.
        assertTrue(Files.readString(out.resolve(".lora4j.lock")).contains("\"pid\": " + first.pid()));
        List<String> resume = new ArrayList<>(args);
        int at = resume.indexOf("100000");
        resume.set(at, "1");
        resume.addAll(List.of("--resume", out.toString()));
        // max_steps 1 is below the killed run's progress: refused with the step it reached, and the lock was free.
        Process third = start(resume, tmp.resolve("third.log"));
        assertTrue(third.waitFor(120, TimeUnit.SECONDS));
        String log = Files.readString(tmp.resolve("third.log"));
        assertTrue(log.contains("stale lock of a run that did not end cleanly (pid " + first.pid()), log);
        assertTrue(log.contains("past this run's 1 steps"), log);
        assertEquals("", Files.readString(out.resolve(".lora4j.lock")), "released on exit");
    }

    /** Surefire runs tests from a manifest-only jar; the real class path is in this property. */
    private static String classpath() {
        String cp = System.getProperty("surefire.test.class.path");
        return cp != null ? cp : System.getProperty("java.class.path");
    }

    static String sep() {
        return File.pathSeparator;
    }
}

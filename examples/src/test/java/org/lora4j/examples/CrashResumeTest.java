package org.lora4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.DecoderModel;
import org.lora4j.train.ModelConfig;
import org.lora4j.train.text.ByteTokenizer;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.node.ObjectNode;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

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

    @Test
    void aKilledRunResumesBitForBit(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("model");
        DecoderModel.randomInit(ModelConfig.llama(259, 32, 64, 2, 4, 2), 1).save(model);
        new ByteTokenizer().save(model);
        Path data = tmp.resolve("data.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            lines.add("{\"messages\":[{\"role\":\"user\",\"content\":\"question " + i + "\"},{\"role\":\"assistant\",\"content\":\"reply "
                    + "x".repeat(i % 7) + "\"}]}");
        }
        Files.writeString(data, String.join("\n", lines) + "\n");
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
        int loggedBeforeKill = Files.readAllLines(crashed.resolve("metrics.jsonl")).size();
        assertTrue(loggedBeforeKill < steps, "logged " + loggedBeforeKill + " of " + steps);

        List<String> b = new ArrayList<>(common);
        b.addAll(List.of("--out", crashed.toString(), "--resume", crashed.toString()));
        assertEquals(0, Main.run(b.toArray(String[]::new)));

        assertEquals(metricsWithoutTiming(straight), metricsWithoutTiming(crashed));
        assertArrayEquals(Files.readAllBytes(straight.resolve("adapter_model.safetensors")),
                Files.readAllBytes(crashed.resolve("adapter_model.safetensors")), "final adapters are byte-identical");
        assertArrayEquals(Files.readAllBytes(straight.resolve("snapshots/step-000040.safetensors")),
                Files.readAllBytes(crashed.resolve("snapshots/step-000040.safetensors")));
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

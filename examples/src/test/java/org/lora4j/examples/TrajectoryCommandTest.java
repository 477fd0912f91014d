package org.lora4j.examples;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code lora4j trajectory} end to end on a tiny real sft run with a snapshot every step. */
class TrajectoryCommandTest {
    static Path model;
    static Path data;
    static Path sftRun;
    static Path plainRun;

    @BeforeAll
    static void tinyRuns(@TempDir Path dir) throws Exception {
        // the tiny model and chat data of CommandLineTest (24 chat lines and one text line)
        CommandLineTest.tinyModelAndData(dir);
        model = CommandLineTest.model;
        data = CommandLineTest.data;
        sftRun = dir.resolve("sft-run");
        String[] r = CommandLineTest.run("sft", "--model", model.toString(), "--data", data.toString(), "--out", sftRun.toString(),
                "--lora-rank", "2", "--target-modules", "down_proj,q_proj", "--lr", "0.05", "--max-steps", "12",
                "--batch-size", "4", "--seed", "3", "--eval-every", "4", "--snapshot-every", "1", "--quiet");
        assertEquals("0", r[0], r[2]);
        plainRun = dir.resolve("plain-run");
        r = CommandLineTest.run("sft", "--model", model.toString(), "--data", data.toString(), "--out", plainRun.toString(),
                "--lora-rank", "2", "--target-modules", "down_proj", "--max-steps", "2", "--batch-size", "4", "--quiet");
        assertEquals("0", r[0], r[2]);
    }

    @Test
    void writesTheReportCsvAndPlotsOfARealRun(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("traj");
        String[] r = CommandLineTest.run("trajectory", "--run", sftRun.toString(), "--k", "1,2,5", "--eps", "0.002",
                "--out", out.toString());
        assertEquals("0", r[0], r[2]);
        JsonNode summary = new ObjectMapper().readTree(r[1].strip().lines().reduce((a, b) -> b).orElseThrow());
        JsonNode j = new ObjectMapper().readTree(out.resolve("trajectory.json").toFile());
        String runId = new ObjectMapper().readTree(sftRun.resolve("run.json").toFile()).get("run_id").asText();
        assertEquals(runId, j.get("run_id").asText());
        assertEquals(runId, summary.get("run_id").asText());
        assertEquals("3", j.get("seed").asText());
        assertEquals(4, j.get("modules").size(), "q_proj and down_proj of 2 layers, stacked");
        assertEquals(1, j.get("snapshot_every").asInt());
        assertEquals(List.of(1, 2, 5), List.of(j.get("k").get(0).asInt(), j.get("k").get(1).asInt(), j.get("k").get(2).asInt()));
        assertEquals(0.002, j.get("eps").asDouble());
        assertEquals(13, j.get("steps").size(), "step 0 and every step to 12");
        for (String f : List.of("B", "A")) {
            for (int k : List.of(1, 2, 5)) {
                JsonNode lcs = j.get("lcs_" + f + ".k" + k);
                assertNotNull(lcs, f + " k" + k);
                for (JsonNode p : lcs) {
                    assertTrue(p.get(0).asInt() >= k && p.get(0).asInt() <= 12 - k, p.toString());
                    assertTrue(p.get(1).asDouble() >= -1 - 1e-9 && p.get(1).asDouble() <= 1 + 1e-9, p.toString());
                }
                JsonNode step = j.get("transition_step_" + f + ".k" + k);
                if (!lcs.isEmpty()) {
                    int best = -1;
                    double peak = Double.NEGATIVE_INFINITY;
                    for (JsonNode p : lcs) {
                        if (p.get(1).asDouble() > peak) {
                            peak = p.get(1).asDouble();
                            best = p.get(0).asInt();
                        }
                    }
                    assertEquals(best, step.asInt(), "the transition is the arg-max of LCS_" + f + " k" + k);
                    assertEquals(peak, j.get("transition_peak_" + f + ".k" + k).asDouble());
                    assertEquals(step, summary.get("transition_step_" + f).get("k" + k));
                }
            }
            assertEquals(2, j.get("pca_" + f).get("explained_variance_ratio").size());
        }
        assertEquals(13, j.get("comp").size());
        double compFinal = j.get("comp").get(12).get(1).asDouble();
        assertTrue(compFinal >= 1 / Math.sqrt(2) - 1e-9 && compFinal <= 1 + 1e-9, "rank 2: comp(final) in [1/sqrt 2, 1]: " + compFinal);
        assertEquals(12, j.get("grad_norm").size());
        assertEquals(0, j.get("notes").size() - countNotes(j, "peaks at"), j.get("notes").toString());

        List<String> csv = Files.readAllLines(out.resolve("trajectory.csv"));
        assertEquals(14, csv.size());
        assertTrue(csv.get(0).startsWith("step,norm_B,norm_A,lcs_B.k1,lcs_B.k2,lcs_B.k5,"), csv.get(0));
        assertEquals("0", csv.get(1).split(",")[0]);
        for (String png : List.of("norms", "lcs_B_k1", "lcs_B_k5", "pca_B", "pca_A", "comp", "grad_norm", "loss")) {
            BufferedImage img = ImageIO.read(out.resolve(png + ".png").toFile());
            assertNotNull(img, png);
            assertEquals(Plots.WIDTH, img.getWidth());
            assertTrue(Files.isRegularFile(out.resolve(png + ".csv")), png + ".csv");
        }
        List<String> loss = Files.readAllLines(out.resolve("loss.csv"));
        assertEquals("series,x,y", loss.get(0));
        assertEquals(12, loss.stream().filter(l -> l.startsWith("train loss,")).count());
        assertEquals(3, loss.stream().filter(l -> l.startsWith("eval loss,")).count(), "eval every 4 steps: 4, 8, 12");

        // The same --out again: refused; with --overwrite: replaced.
        String[] again = CommandLineTest.run("trajectory", "--run", sftRun.toString(), "--k", "1", "--out", out.toString());
        assertEquals("2", again[0]);
        assertTrue(CommandLineTest.errorLine(again).startsWith("lora4j trajectory: output directory " + out + " is not empty"),
                again[2]);
        String[] over = CommandLineTest.run("trajectory", "--run", sftRun.toString(), "--k", "2", "--module",
                "model.layers.1.mlp.down_proj", "--out", out.toString(), "--overwrite");
        assertEquals("0", over[0], over[2]);
        JsonNode j2 = new ObjectMapper().readTree(out.resolve("trajectory.json").toFile());
        assertEquals("model.layers.1.mlp.down_proj", j2.get("modules").get(0).asText());
        assertFalse(Files.exists(out.resolve("lcs_B_k1.png")), "the earlier report's files are gone");
    }

    private static int countNotes(JsonNode j, String contains) {
        int n = 0;
        for (JsonNode note : j.get("notes")) {
            if (note.asText().contains(contains)) {
                n++;
            }
        }
        return n;
    }

    @Test
    void badInputIsOneClearLine(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("o");
        CommandLineTest.assertFails("2", "lora4j trajectory: --run " + tmp.resolve("nope") + ": no such directory",
                "trajectory", "--run", tmp.resolve("nope").toString(), "--out", out.toString());
        CommandLineTest.assertFails("1", "lora4j trajectory: " + plainRun + " has no snapshots/ folder and no step-N.safetensors;"
                        + " train with --snapshot-every N (TrainConfig.snapshotEvery)",
                "trajectory", "--run", plainRun.toString(), "--out", out.toString());
        CommandLineTest.assertFails("2", "lora4j trajectory: module 'model.layers.0.mlp.up_proj' is not in the snapshots of "
                        + sftRun + "; adapted modules there: [model.layers.0.mlp.down_proj, model.layers.0.self_attn.q_proj,"
                        + " model.layers.1.mlp.down_proj, model.layers.1.self_attn.q_proj]",
                "trajectory", "--run", sftRun.toString(), "--module", "model.layers.0.mlp.up_proj", "--out", out.toString());
        String runId = new ObjectMapper().readTree(sftRun.resolve("run.json").toFile()).get("run_id").asText();
        CommandLineTest.assertFails("2", "lora4j trajectory: k = 10 steps is too large for run " + runId + ": its snapshots span"
                        + " steps 0..12 every 1, and LCS_k needs snapshots at t - k and t + k",
                "trajectory", "--run", sftRun.toString(), "--out", out.toString());
        CommandLineTest.assertFails("2", "lora4j trajectory: --k must be a comma-separated list of whole numbers of steps,"
                        + " e.g. 5,10,15; got '5,ten' ('ten' is not a number)",
                "trajectory", "--run", sftRun.toString(), "--k", "5,ten", "--out", out.toString());
        CommandLineTest.assertFails("2", "lora4j trajectory: --eps must be a number, got 'small'",
                "trajectory", "--run", sftRun.toString(), "--eps", "small", "--out", out.toString());
        CommandLineTest.assertFails("2", "lora4j trajectory: missing required option --out",
                "trajectory", "--run", sftRun.toString());
        CommandLineTest.assertFails("2", "lora4j trajectory: output directory " + sftRun.resolve("traj") + " is inside the input --run "
                        + sftRun + ": lora4j never writes into what it reads; choose another --out",
                "trajectory", "--run", sftRun.toString(), "--k", "1", "--out", sftRun.resolve("traj").toString());
        assertFalse(Files.exists(out), "a refused command leaves no output directory");
        Files.createDirectories(out);
        Files.writeString(out.resolve("mine.txt"), "x");
        CommandLineTest.assertFails("2", "lora4j trajectory: --overwrite replaces only an earlier trajectory report (a directory"
                        + " with trajectory.json), and " + out + " holds something else; choose another --out",
                "trajectory", "--run", sftRun.toString(), "--k", "1", "--out", out.toString(), "--overwrite");
    }

    @Test
    void withoutMetricsTheRestIsWrittenAndTheNoteSaysSo(@TempDir Path tmp) throws Exception {
        // A copy of the snapshots alone: no metrics.jsonl, no run.json (the interval comes from the snapshots).
        Path copy = tmp.resolve("copy/snapshots");
        Files.createDirectories(copy);
        try (var s = Files.list(sftRun.resolve("snapshots"))) {
            for (Path p : s.toList()) {
                Files.copy(p, copy.resolve(p.getFileName()));
            }
        }
        Path out = tmp.resolve("o");
        String[] r = CommandLineTest.run("trajectory", "--run", tmp.resolve("copy").toString(), "--k", "2", "--out", out.toString());
        assertEquals("0", r[0], r[2]);
        JsonNode j = new ObjectMapper().readTree(out.resolve("trajectory.json").toFile());
        assertTrue(j.get("grad_norm").isNull());
        assertTrue(j.get("notes").toString().contains("metrics.jsonl not found next to the snapshots"), j.toString());
        assertFalse(Files.exists(out.resolve("loss.png")));
        assertTrue(Files.exists(out.resolve("pca_B.png")));
    }

    @Test
    void helpNamesTheDefaults() throws IOException, Exception {
        String[] r = CommandLineTest.run("trajectory", "--help");
        assertEquals("0", r[0]);
        assertTrue(r[1].contains("(default 5,10,15;") && r[1].contains("(default 0.0035, the paper's text; its released code used 0.002)"),
                r[1]);
        assertTrue(CommandLineTest.run("help")[1].contains("trajectory"));
    }
}

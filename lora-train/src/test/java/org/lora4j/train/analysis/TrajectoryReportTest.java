package org.lora4j.train.analysis;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.PeftKeys;
import org.lora4j.core.Safetensors;
import org.lora4j.train.trainer.AdapterSnapshots;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The whole trajectory report on planted snapshots whose answers are known. */
class TrajectoryReportTest {
    static final String DOWN = "model.layers.1.mlp.down_proj";
    static final String UP = "model.layers.0.mlp.up_proj";

    /** One module's A [rank, in] and B [out, rank] at one step, row-major. */
    record Factors(double[][] a, double[][] b) {
    }

    /**
     * Writes a run directory like the trainer's: snapshots every {@code every} steps from 0 to
     * {@code last}, run.json, and metrics.jsonl with grad_norm = step / 100.
     */
    static Path run(Path dir, int every, int last, Map<String, IntFunction<Factors>> modules) throws IOException {
        Files.createDirectories(dir.resolve("snapshots"));
        for (int step = 0; step <= last; step += every) {
            Map<String, INDArray> t = new LinkedHashMap<>();
            for (Map.Entry<String, IntFunction<Factors>> m : modules.entrySet()) {
                Factors f = m.getValue().apply(step);
                t.put(PeftKeys.saved(m.getKey(), PeftKeys.Factor.A), Nd4j.createFromArray(f.a()).castTo(DataType.FLOAT));
                t.put(PeftKeys.saved(m.getKey(), PeftKeys.Factor.B), Nd4j.createFromArray(f.b()).castTo(DataType.FLOAT));
            }
            Safetensors.write(dir.resolve(String.format("snapshots/step-%06d.safetensors", step)), t,
                    Map.of(AdapterSnapshots.RUN_ID_KEY, "run-x", "lora4j_seed", "7", "lora4j_step", Integer.toString(step)));
        }
        Files.writeString(dir.resolve("run.json"), "{\"run_id\": \"run-x\", \"seed\": 7, \"config\": {\"snapshot_every\": "
                + every + "}}\n");
        StringBuilder metrics = new StringBuilder();
        for (int step = 1; step <= last; step++) {
            metrics.append("{\"step\":").append(step).append(",\"run_id\":\"run-x\",\"loss\":").append(1.0 / step)
                    .append(",\"grad_norm\":").append(step / 100.0).append(step % 10 == 0 ? ",\"eval_loss\":0.5" : "").append("}\n");
        }
        Files.writeString(dir.resolve("metrics.jsonl"), metrics);
        return dir;
    }

    /**
     * B [4, 1] goes along e1 at 0.001 per step up to step 100, then turns a right angle and goes
     * along e2; A [1, 3] goes straight along (1, 1, 0) all the time.
     */
    static Factors turnAt100(int step) {
        double x = 0.001 * Math.min(step, 100);
        double y = 0.001 * Math.max(step - 100, 0);
        double s = 0.001 * step;
        return new Factors(new double[][]{{0.5 + s, 0.5 + s, 0}}, new double[][]{{x}, {y}, {0}, {0}});
    }

    @Test
    void aTrajectoryThatTurnsAtAKnownStepGivesThatStepForEveryK(@TempDir Path dir) throws IOException {
        Path run = run(dir.resolve("r"), 5, 200, Map.of(DOWN, TrajectoryReportTest::turnAt100));
        TrajectoryReport r = TrajectoryReport.build(run, null, TrajectoryReport.DEFAULT_K, TrajectoryReport.DEFAULT_EPS);
        assertEquals(List.of(DOWN), r.modules());
        assertEquals("run-x", r.runId());
        assertEquals("7", r.seed());
        assertEquals(5, r.snapshotEvery());
        for (int k : List.of(5, 10, 15)) {
            TrajectoryReport.Transition t = r.b().transitions().get(k);
            assertEquals(100, t.step(), "k = " + k);
            assertEquals(0.0, t.peak(), 1e-6, "a right-angle turn has LCS 0");
            assertFalse(t.straight());
            // Away from the turn the path is straight.
            for (Trajectory.Point p : r.b().lcs().get(k)) {
                if (Math.abs(p.step() - 100) >= k) {
                    assertEquals(-1.0, p.value(), 1e-6, "k = " + k + ", step " + p.step());
                }
            }
            // LCS_k needs t - k and t + k: the first and last k steps have no value.
            assertEquals(k, r.b().lcs().get(k).get(0).step());
            assertEquals(200 - k, r.b().lcs().get(k).get(r.b().lcs().get(k).size() - 1).step());
            // A never turns: its peak is -1 and reported as no transition.
            TrajectoryReport.Transition ta = r.a().transitions().get(k);
            assertEquals(-1.0, ta.peak(), 1e-6);
            assertTrue(ta.straight());
            assertTrue(r.notes().stream().anyMatch(n -> n.startsWith("LCS_A k=" + k + " peaks at -1.0000")), r.notes().toString());
        }
        assertTrue(r.notes().stream().noneMatch(n -> n.startsWith("LCS_B")), r.notes().toString());
        assertEquals(0.1, r.b().norms()[20], 1e-6, "|B| at step 100");
        // Gradient norms from metrics.jsonl, every step.
        assertEquals(200, r.metrics().steps().length);
        assertEquals(1.5, r.metrics().gradNorm()[149], 1e-12);
        assertTrue(r.metrics().hasEvalLoss());
    }

    @Test
    void theLagIsInStepsAndMustSitOnTheSnapshotGrid(@TempDir Path dir) throws IOException {
        // Snapshots every 10 steps: k = 10 is one snapshot, k = 20 two; the turn is found either way.
        Path run = run(dir.resolve("r"), 10, 200, Map.of(DOWN, TrajectoryReportTest::turnAt100));
        TrajectoryReport r = TrajectoryReport.build(run, DOWN, List.of(10, 20), TrajectoryReport.RELEASED_EPS);
        assertEquals(100, r.b().transitions().get(10).step());
        assertEquals(100, r.b().transitions().get(20).step());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TrajectoryReport.build(run, DOWN, List.of(5, 10), 0.0035));
        assertEquals("k = 5 steps is not a multiple of the snapshot interval, 10 steps, of run run-x: LCS_k needs snapshots"
                + " at t - k and t + k", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TrajectoryReport.build(run, DOWN, List.of(110), 0.0035));
        assertEquals("k = 110 steps is too large for run run-x: its snapshots span steps 0..200 every 10, and LCS_k needs"
                + " snapshots at t - k and t + k", e.getMessage());
        // The largest lag that fits: one point, at the middle.
        assertEquals(1, TrajectoryReport.build(run, DOWN, List.of(100), 0.0035).b().lcs().get(100).size());
    }

    @Test
    void movesUnderEpsAreNotScoredAndLeaveNoTransition(@TempDir Path dir) throws IOException {
        Path run = run(dir.resolve("r"), 5, 50, Map.of(DOWN, TrajectoryReportTest::turnAt100));
        // B moves 0.005 per 5 steps: under eps = 0.01 at k = 5, over it at k = 15.
        TrajectoryReport r = TrajectoryReport.build(run, DOWN, List.of(5, 15), 0.01);
        assertTrue(r.b().lcs().get(5).isEmpty());
        assertNull(r.b().transitions().get(5));
        assertFalse(r.b().lcs().get(15).isEmpty());
        assertTrue(r.notes().contains("LCS_B k=5: no step where B moved more than eps = 0.01 over 5 steps; no transition step"),
                r.notes().toString());
        JsonNode json = new ObjectMapper().readTree(r.toJson());
        assertTrue(json.get("transition_step_B.k5").isNull());
        assertTrue(json.get("transition_peak_B.k5").isNull());
    }

    @Test
    void pcaOfAnLShapedPathKeepsItsShape(@TempDir Path dir) throws IOException {
        // An L in a 6-dimensional B: 20 steps along e1, then 10 along e4. A path in a plane is
        // explained by two components, and the PC1/PC2 path is the L itself up to a rotation or
        // reflection: every distance between two snapshots is kept.
        IntFunction<Factors> l = step -> {
            double[][] b = new double[6][1];
            b[0][0] = 0.01 * Math.min(step, 20);
            b[3][0] = 0.01 * Math.max(step - 20, 0);
            return new Factors(new double[][]{{1, 0}}, b);
        };
        Path run = run(dir.resolve("r"), 1, 30, Map.of(DOWN, l));
        TrajectoryReport r = TrajectoryReport.build(run, null, List.of(1, 2), 0.0035);
        Trajectory.Pca pca = r.b().pca();
        double[] ev = pca.explainedVarianceRatio();
        assertEquals(2, ev.length);
        assertEquals(1.0, ev[0] + ev[1], 1e-9);
        assertTrue(ev[0] > ev[1] && ev[1] > 0.05, "both legs show: " + ev[0] + ", " + ev[1]);
        double[][] s = pca.scores();
        for (int i = 0; i <= 30; i++) {
            Factors fi = l.apply(i);
            for (int j = 0; j <= 30; j++) {
                Factors fj = l.apply(j);
                double d0 = Math.hypot(fi.b()[0][0] - fj.b()[0][0], fi.b()[3][0] - fj.b()[3][0]);
                double d1 = Math.hypot(s[i][0] - s[j][0], s[i][1] - s[j][1]);
                assertEquals(d0, d1, 1e-6, "distance " + i + "-" + j);
            }
        }
        assertEquals(20, r.b().transitions().get(1).step(), "the corner of the L");
        // A does not move: one point, nothing explained, and no LCS.
        assertTrue(r.a().lcs().get(1).isEmpty());
    }

    @Test
    void compStacksTheBOfAllModulesAndIsCheckableByHand(@TempDir Path dir) throws IOException {
        // Two modules of rank 2, B [2, 2] each; stacked B is [4, 2]. B_final = [I; 0].
        double[][] id = {{1, 0}, {0, 1}};
        double[][] zero = {{0, 0}, {0, 0}};
        double[][] e11 = {{1, 0}, {0, 0}};
        double[][] e22 = {{0, 0}, {0, 1}};
        double[][] a = {{1, 2, 3}, {4, 5, 6}};
        Map<Integer, double[][][]> bAt = Map.of(
                0, new double[][][]{zero, id},    // B_0ᵀ B_final = 0                          -> comp 0
                1, new double[][][]{e11, e22},    // B_1ᵀ B_final = e11: |.|_F 1, norms √2 √2  -> 1/2
                2, new double[][][]{id, id},      // B_2ᵀ B_final = I: √2 over √4 √2           -> 1/2
                3, new double[][][]{id, zero});   // B_finalᵀ B_final = I: √2 over √2 √2       -> 1/√2
        Map<String, IntFunction<Factors>> modules = new LinkedHashMap<>();
        modules.put(UP, step -> new Factors(a, bAt.get(step)[0]));
        modules.put(DOWN, step -> new Factors(a, bAt.get(step)[1]));
        Path run = run(dir.resolve("r"), 1, 3, modules);
        TrajectoryReport r = TrajectoryReport.build(run, null, List.of(1), 0);
        assertEquals(List.of(UP, DOWN), r.modules(), "layer 0 before layer 1");
        double[] comp = r.comp();
        assertEquals(0.0, comp[0], 1e-12);
        assertEquals(0.5, comp[1], 1e-7);
        assertEquals(0.5, comp[2], 1e-7);
        assertEquals(1 / Math.sqrt(2), comp[3], 1e-7);
        // One module alone: its own B, [2, 2]; B_final = 0 for DOWN, so comp is 0 throughout.
        TrajectoryReport down = TrajectoryReport.build(run, DOWN, List.of(1), 0);
        assertEquals(List.of(DOWN), down.modules());
        assertEquals(0.0, down.comp()[0]);
        assertEquals(Math.sqrt(2), down.b().norms()[0], 1e-7);
    }

    @Test
    void jsonAndCsvHoldEverySeries(@TempDir Path dir) throws IOException {
        Path run = run(dir.resolve("r"), 5, 200, Map.of(DOWN, TrajectoryReportTest::turnAt100));
        TrajectoryReport r = TrajectoryReport.build(run, null, List.of(5, 10), 0.0035);
        JsonNode j = new ObjectMapper().readTree(r.toJson());
        assertEquals("run-x", j.get("run_id").asText());
        assertEquals("7", j.get("seed").asText());
        assertEquals("steps", j.get("k_unit").asText());
        assertEquals(0.0035, j.get("eps").asDouble());
        assertEquals(DOWN, j.get("modules").get(0).asText());
        assertFalse(j.get("library_version").asText().isEmpty());
        assertEquals(100, j.get("transition_step_B.k5").asInt());
        assertEquals(0.0, j.get("transition_peak_B.k5").asDouble(), 1e-6);
        assertEquals(100, j.get("transition_step_B.k10").asInt());
        JsonNode lcs = j.get("lcs_B.k10");
        assertEquals(10, lcs.get(0).get(0).asInt(), "[step, value] pairs");
        assertEquals(-1.0, lcs.get(0).get(1).asDouble(), 1e-6);
        assertEquals(r.b().lcs().get(10).size(), lcs.size());
        assertTrue(j.has("lcs_A.k5") && j.has("transition_peak_A.k10"));
        assertEquals(2, j.get("pca_B").get("explained_variance_ratio").size());
        assertEquals(41, j.get("pca_B").get("pc2").size());
        assertEquals(41, j.get("norm_A").size());
        assertEquals(41, j.get("comp").size());
        assertEquals(200, j.get("grad_norm").size());
        assertEquals(0.01, j.get("grad_norm").get(0).get(1).asDouble());

        List<String> rows = r.toCsv().lines().toList();
        assertEquals("step,norm_B,norm_A,lcs_B.k5,lcs_B.k10,lcs_A.k5,lcs_A.k10,pc1_B,pc2_B,pc1_A,pc2_A,comp,grad_norm", rows.get(0));
        assertEquals(42, rows.size());
        String[] step0 = rows.get(1).split(",", -1);
        assertEquals("0", step0[0]);
        assertEquals("", step0[3], "no LCS at the first snapshot");
        assertEquals("", step0[12], "no gradient at step 0");
        String[] step100 = rows.get(21).split(",", -1);
        assertEquals("100", step100[0]);
        assertEquals(0.0, Double.parseDouble(step100[3]), 1e-6);
        assertEquals(1.0, Double.parseDouble(step100[12]));
    }

    @Test
    void missingMetricsIsANoteNotAFailure(@TempDir Path dir) throws IOException {
        Path run = run(dir.resolve("r"), 5, 40, Map.of(DOWN, TrajectoryReportTest::turnAt100));
        Files.delete(run.resolve("metrics.jsonl"));
        TrajectoryReport r = TrajectoryReport.build(run, null, List.of(5), 0.0035);
        assertNull(r.metrics());
        assertTrue(r.notes().contains("metrics.jsonl not found next to the snapshots: no gradient norm or loss curve"));
        assertTrue(new ObjectMapper().readTree(r.toJson()).get("grad_norm").isNull());
        // The snapshots folder itself works too, and finds the run's files beside it.
        Files.writeString(run.resolve("metrics.jsonl"), "{\"step\":1,\"run_id\":\"run-x\",\"loss\":2,\"grad_norm\":3}\n");
        assertEquals(3.0, TrajectoryReport.build(run.resolve("snapshots"), null, List.of(5), 0.0035).metrics().gradNorm()[0]);
    }

    @Test
    void badInputIsRefusedNamingWhatIsWrong(@TempDir Path dir) throws IOException {
        Path missing = dir.resolve("nope");
        IOException io = assertThrows(IOException.class, () -> TrajectoryReport.build(missing, null, List.of(5), 0.0035));
        assertEquals(missing + ": no such directory", io.getMessage());
        Path empty = Files.createDirectories(dir.resolve("empty"));
        io = assertThrows(IOException.class, () -> TrajectoryReport.build(empty, null, List.of(5), 0.0035));
        assertEquals(empty + " has no snapshots/ folder and no step-N.safetensors; train with --snapshot-every N"
                + " (TrainConfig.snapshotEvery)", io.getMessage());
        Files.createDirectories(empty.resolve("snapshots"));
        io = assertThrows(IOException.class, () -> TrajectoryReport.build(empty, null, List.of(5), 0.0035));
        assertTrue(io.getMessage().startsWith(empty.resolve("snapshots") + ": no snapshots (step-N.safetensors)"), io.getMessage());

        Map<String, IntFunction<Factors>> two = new LinkedHashMap<>();
        two.put(DOWN, TrajectoryReportTest::turnAt100);
        two.put(UP, TrajectoryReportTest::turnAt100);
        Path run = run(dir.resolve("r"), 5, 40, two);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TrajectoryReport.build(run, "model.layers.9.self_attn.q_proj", List.of(5), 0.0035));
        assertEquals("module 'model.layers.9.self_attn.q_proj' is not in the snapshots of " + run + "; adapted modules there: ["
                + UP + ", " + DOWN + "]", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TrajectoryReport.build(run, null, List.of(5), -1));
        assertEquals("eps must be a finite number >= 0, got -1.0", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TrajectoryReport.build(run, null, List.of(5, 5), 0));
        assertEquals("lags k repeat: [5, 5]", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TrajectoryReport.build(run, null, List.of(0), 0));
        assertEquals("lag k must be >= 1 step, got 0", e.getMessage());

        // metrics.jsonl of another run, or broken in the middle, names the file and line.
        Files.writeString(run.resolve("metrics.jsonl"), "{\"step\":1,\"run_id\":\"run-x\",\"loss\":2,\"grad_norm\":3}\n"
                + "{\"step\":2,\"run_id\":\"run-y\",\"loss\":2,\"grad_norm\":3}\n");
        e = assertThrows(IllegalArgumentException.class, () -> TrajectoryReport.build(run, null, List.of(5), 0.0035));
        assertEquals(run.resolve("metrics.jsonl") + " line 2: a metrics line of run run-y, expected run run-x; runs do not mix",
                e.getMessage());
        Files.writeString(run.resolve("metrics.jsonl"), "{\"step\":1,\"run_id\":\"run-x\",\"loss\":2,\"grad_norm\":3}\n"
                + "{\"step\":2,\"run_id\n{\"step\":3,\"run_id\":\"run-x\"}\n");
        e = assertThrows(IllegalArgumentException.class, () -> TrajectoryReport.build(run, null, List.of(5), 0.0035));
        assertTrue(e.getMessage().startsWith(run.resolve("metrics.jsonl") + " line 2: not JSON"), e.getMessage());
        // A last line cut by a crash is skipped.
        Files.writeString(run.resolve("metrics.jsonl"), "{\"step\":1,\"run_id\":\"run-x\",\"loss\":2,\"grad_norm\":3}\n{\"step\":2,\"ru");
        assertEquals(1, TrajectoryReport.build(run, null, List.of(5), 0.0035).metrics().steps().length);

        // Too few snapshots for a trajectory.
        Path shortRun = run(dir.resolve("short"), 5, 5, Map.of(DOWN, TrajectoryReportTest::turnAt100));
        e = assertThrows(IllegalArgumentException.class, () -> TrajectoryReport.build(shortRun, null, List.of(5), 0.0035));
        assertEquals(shortRun + ": 2 snapshot(s) (steps [0, 5]); a trajectory needs at least 3", e.getMessage());
        // run.json of another run beside the snapshots.
        Files.writeString(run.resolve("run.json"), "{\"run_id\": \"run-z\", \"config\": {\"snapshot_every\": 5}}");
        e = assertThrows(IllegalArgumentException.class, () -> TrajectoryReport.build(run, null, List.of(5), 0.0035));
        assertEquals(run.resolve("run.json") + " is run run-z but its snapshots are run run-x; runs do not mix", e.getMessage());
    }

    @Test
    void theReportFromInnerProductsEqualsTheMetricsOfTheStackedVectors(@TempDir Path dir) throws IOException {
        // A random walk over three modules of rank 2 (two of them [3, 2], one [5, 2]): the report, which
        // works from Gram matrices one module at a time, against Trajectory on the stacked vectors.
        java.util.SplittableRandom rng = new java.util.SplittableRandom(11);
        Map<String, double[][][]> walkB = new LinkedHashMap<>();
        Map<String, double[][][]> walkA = new LinkedHashMap<>();
        int[][] shapes = {{3, 2, 4}, {5, 2, 3}, {3, 2, 6}};
        String[] names = {"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "model.layers.2.mlp.up_proj"};
        for (int m = 0; m < 3; m++) {
            double[][][] b = new double[31][shapes[m][0]][shapes[m][1]];
            double[][][] a = new double[31][shapes[m][1]][shapes[m][2]];
            for (int t = 1; t <= 30; t++) {
                for (int i = 0; i < b[t].length; i++) {
                    for (int j = 0; j < b[t][i].length; j++) {
                        b[t][i][j] = b[t - 1][i][j] + 0.01 * (rng.nextDouble() - 0.3);
                    }
                }
                for (int i = 0; i < a[t].length; i++) {
                    for (int j = 0; j < a[t][i].length; j++) {
                        a[t][i][j] = (t == 1 ? 0.5 : a[t - 1][i][j]) + 0.01 * (rng.nextDouble() - 0.5);
                    }
                }
            }
            walkB.put(names[m], b);
            walkA.put(names[m], a);
        }
        Map<String, IntFunction<Factors>> modules = new LinkedHashMap<>();
        for (String name : names) {
            modules.put(name, step -> new Factors(walkA.get(name)[step], walkB.get(name)[step]));
        }
        Path run = run(dir.resolve("r"), 1, 30, modules);
        TrajectoryReport r = TrajectoryReport.build(run, null, List.of(1, 3, 7), 0.002);
        Snapshots.Stack stack = Snapshots.stack(run, r.modules());
        assertEquals(List.of(names), r.modules());
        for (String f : List.of("B", "A")) {
            Trajectory t = f.equals("B") ? stack.b() : stack.a();
            TrajectoryReport.Factor rf = f.equals("B") ? r.b() : r.a();
            double[] norms = t.norms();
            for (int i = 0; i < norms.length; i++) {
                assertEquals(norms[i], rf.norms()[i], 1e-12 * (1 + norms[i]), f + " norm " + i);
            }
            for (int k : List.of(1, 3, 7)) {
                List<Trajectory.Point> ref = t.localCosineInSteps(k, 0.002);
                List<Trajectory.Point> got = rf.lcs().get(k);
                assertEquals(ref.size(), got.size(), f + " k" + k);
                assertTrue(ref.size() > 10, "enough points to compare: " + ref.size());
                for (int i = 0; i < ref.size(); i++) {
                    assertEquals(ref.get(i).step(), got.get(i).step());
                    assertEquals(ref.get(i).value(), got.get(i).value(), 1e-9, f + " k" + k + " step " + ref.get(i).step());
                }
            }
            Trajectory.Pca ref = t.pca(2);
            for (int c = 0; c < 2; c++) {
                assertEquals(ref.explainedVarianceRatio()[c], rf.pca().explainedVarianceRatio()[c], 1e-9);
                for (int i = 0; i < 31; i++) {
                    assertEquals(ref.scores()[i][c], rf.pca().scores()[i][c], 1e-9, f + " PC" + (c + 1) + " at " + i);
                }
            }
        }
        double[] comp = stack.b().compWithFinal((int) stack.bRows(), stack.rank());
        assertEquals(11, stack.bRows());
        for (int i = 0; i < comp.length; i++) {
            assertEquals(comp[i], r.comp()[i], 1e-12, "comp at " + i);
        }
    }

    @Test
    void modulesSortWithLayerNumbersInOrder() {
        List<String> names = new ArrayList<>(List.of("model.layers.10.mlp.down_proj", "model.layers.2.mlp.down_proj",
                "model.layers.2.mlp.up_proj", "model.layers.1.self_attn.q_proj"));
        names.sort(Snapshots::compareModules);
        assertEquals(List.of("model.layers.1.self_attn.q_proj", "model.layers.2.mlp.down_proj", "model.layers.2.mlp.up_proj",
                "model.layers.10.mlp.down_proj"), names);
    }
}

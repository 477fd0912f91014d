package org.lora4j.bench;

import org.junit.jupiter.api.Test;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RegressionTest {
    private static Regression.Stat stat(double... v) {
        return Regression.Stat.of(v);
    }

    @Test
    void statIsMedianAndRelativeSpread() {
        Regression.Stat s = stat(1.2, 1.0, 1.1);
        assertEquals(1.1, s.median(), 1e-12);
        assertEquals(0.2 / 1.1, s.noise(), 1e-12);
        assertEquals(1.05, stat(1.0, 1.1).median(), 1e-12);
    }

    @Test
    void slowdownWithinTheFloorPasses() {
        Regression.Verdict v = Regression.compare(Map.of("r", stat(1.0, 1.0, 1.0)), Map.of("r", stat(1.04, 1.04))).get(0);
        assertEquals(Regression.NOISE_FLOOR, v.tolerance(), 0);
        assertFalse(v.regressed());
    }

    @Test
    void slowdownBeyondTheFloorIsFlagged() {
        Regression.Verdict v = Regression.compare(Map.of("r", stat(1.0, 1.0, 1.0)), Map.of("r", stat(1.06, 1.06))).get(0);
        assertTrue(v.regressed());
        assertEquals(0.06, v.change(), 1e-12);
    }

    @Test
    void noisyRunsWidenTheTolerance() {
        // The current run scattered by 20% between repetitions: a 10% slowdown cannot be told from noise.
        Regression.Verdict noisyNow = Regression.compare(Map.of("r", stat(1.0, 1.0)), Map.of("r", stat(1.0, 1.1, 1.2))).get(0);
        assertEquals(0.2 / 1.1, noisyNow.tolerance(), 1e-12);
        assertFalse(noisyNow.regressed());
        // The same when the baseline was the noisy one; a 30% slowdown is flagged either way.
        assertFalse(Regression.compare(Map.of("r", stat(0.9, 1.0, 1.1)), Map.of("r", stat(1.1))).get(0).regressed());
        assertTrue(Regression.compare(Map.of("r", stat(0.9, 1.0, 1.1)), Map.of("r", stat(1.3))).get(0).regressed());
    }

    @Test
    void fasterIsNeverFlaggedAndMissingRatiosAreReported() {
        Map<String, Regression.Stat> base = new LinkedHashMap<>();
        base.put("gone", stat(1.0));
        base.put("kept", stat(1.0));
        List<Regression.Verdict> v = Regression.compare(base, Map.of("kept", stat(0.5), "new", stat(2.0)));
        assertEquals(List.of("gone", "kept", "new"), v.stream().map(Regression.Verdict::name).toList());
        assertNull(v.get(0).now());
        assertFalse(v.get(0).regressed());
        assertFalse(v.get(1).regressed());
        assertNull(v.get(2).baseline());
        assertFalse(v.get(2).regressed());
    }

    @Test
    void jmhRatiosPairIterationsAndMatchTheDenominatorsD() throws Exception {
        String json = """
            [ {"benchmark": "org.lora4j.bench.BaseProductBenchmark.baseProduct", "params": {"d": "1024"},
               "primaryMetric": {"rawData": [[2.0, 4.0]]}},
              {"benchmark": "org.lora4j.bench.BaseProductBenchmark.baseProduct", "params": {"d": "4096"},
               "primaryMetric": {"rawData": [[100.0, 100.0]]}},
              {"benchmark": "org.lora4j.bench.LoraForwardBenchmark.forwardInPlace", "params": {"d": "1024", "rank": "8"},
               "primaryMetric": {"rawData": [[2.2, 4.0]]}} ]""";
        Map<String, Regression.Stat> r = Regression.jmhRatios(new ObjectMapper().readTree(json));
        assertEquals(List.of("LoRA forward / base product (d=1024 rank=8)"), List.copyOf(r.keySet()));
        assertArrayEquals(new double[]{1.1, 1.0}, r.values().iterator().next().samples(), 1e-12);
    }

    private static TrainingResult run(String side, String mode, double ms, double gemm, double rss) {
        return new TrainingResult(side, "256", mode, "step", 10, ms, 1024 / ms * 1000, ms, ms, 100, rss, gemm, 1.0);
    }

    @Test
    void trainingRatiosUseTheSameRunsYardstickAndPairRuns() {
        List<TrainingResult> rs = List.of(
                run("java", "full", 100, 2, 1000), run("java", "lora", 70, 2, 600), run("torch", "full", 1, 1, 1),
                run("java", "full", 200, 4, 1000), run("java", "lora", 160, 4, 700));
        Map<String, Regression.Stat> r = Regression.trainingRatios(rs);
        assertArrayEquals(new double[]{50, 50}, r.get("training step / model-sized product (256/full)").samples(), 1e-12);
        assertArrayEquals(new double[]{0.7, 0.8}, r.get("lora step / full step (256)").samples(), 1e-12);
        assertArrayEquals(new double[]{0.6, 0.7}, r.get("lora peak RSS / full peak RSS (256)").samples(), 1e-12);
        assertFalse(r.containsKey("rank1 step / full step (256)"));
    }

    @Test
    void baselineRoundTripsThroughJson() throws Exception {
        Map<String, Regression.Stat> ratios = Map.of("a / b", stat(1.0, 1.2));
        JsonNode json = new ObjectMapper().readTree(Regression.toJson(ratios, Map.of("machine", "m")).toString());
        assertEquals("m", json.path("machine").asText());
        Regression.Stat back = Regression.fromJson(json, Path.of("x.json")).get("a / b");
        assertEquals(1.1, back.median(), 1e-12);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Regression.fromJson(new ObjectMapper().readTree("{\"ratios\": {\"r\": {}}}"), Path.of("b.json")));
        assertTrue(e.getMessage().contains("b.json") && e.getMessage().contains("'r'"), e.getMessage());
    }
}

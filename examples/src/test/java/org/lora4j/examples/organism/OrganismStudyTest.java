package org.lora4j.examples.organism;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.examples.study.SampleFiles;
import org.lora4j.examples.study.StudyReport;
import org.lora4j.train.analysis.Trajectory;
import org.lora4j.train.analysis.TrajectoryReport;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import javax.imageio.ImageIO;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OrganismStudyTest {
    private static final byte[] PNG = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    @Test
    void evaluatedStepsAreTheGridAndTheLastStep() {
        assertArrayEquals(new int[]{0, 5, 10, 12}, OrganismStudy.evalSteps(12, 5));
        assertArrayEquals(new int[]{0, 4, 8, 12}, OrganismStudy.evalSteps(12, 4));
        assertArrayEquals(new int[]{0, 1}, OrganismStudy.evalSteps(1, 5));
        assertThrows(IllegalArgumentException.class, () -> OrganismStudy.evalSteps(10, 0));
    }

    @Test
    void theBehaviouralStepIsTheFirstToReachHalfTheRiseToThePeak() {
        int[] steps = {0, 10, 20, 30, 40};
        // rise 0.05 -> 0.15: half way is 0.10, first reached at step 20
        assertEquals(20, OrganismStudy.behaviouralStep(steps, new double[]{0.05, 0.07, 0.10, 0.09, 0.15}));
        // an early noisy jump counts: the definition takes the first step at or above half
        assertEquals(10, OrganismStudy.behaviouralStep(steps, new double[]{0.05, 0.12, 0.06, 0.09, 0.15}));
        // only the last step reaches it
        assertEquals(40, OrganismStudy.behaviouralStep(steps, new double[]{0, 0, 0, 0, 0.2}));
        // at x5 EM rises and falls as the answers break down: half of the rise to the peak counts
        assertEquals(20, OrganismStudy.behaviouralStep(steps, new double[]{0.04, 0.07, 0.14, 0.04, 0.02}));
        // EM that never rises above step 0's has no behavioural step
        assertEquals(-1, OrganismStudy.behaviouralStep(steps, new double[]{0.1, 0.1, 0.1, 0.1, 0.1}));
        assertEquals(-1, OrganismStudy.behaviouralStep(steps, new double[]{0.1, 0.05, 0.0, 0.0, 0.05}));
        assertThrows(IllegalArgumentException.class, () -> OrganismStudy.behaviouralStep(steps, new double[]{0.1}));
    }

    @Test
    void aRotationIsATurnInsideThePath() {
        List<Trajectory.Point> lcs = List.of(new Trajectory.Point(5, -0.7), new Trajectory.Point(6, -0.8),
                new Trajectory.Point(7, -0.5), new Trajectory.Point(8, -0.95));
        TrajectoryReport.Transition inside = new TrajectoryReport.Transition(7, -0.5);
        assertEquals(inside, OrganismStudy.rotation(inside, lcs));
        // the first step the lag allows: B setting out from zero
        assertNull(OrganismStudy.rotation(new TrajectoryReport.Transition(5, -0.7), lcs));
        // nearly straight
        assertNull(OrganismStudy.rotation(new TrajectoryReport.Transition(7, -0.95), lcs));
        // no point passed the movement filter
        assertNull(OrganismStudy.rotation(null, lcs));
        assertNull(OrganismStudy.rotation(inside, List.of()));
    }

    @Test
    void presetsRefuseFewerThanThreeSeedsAndLagsLongerThanTheRun() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OrganismStudy.QUICK.withSeeds(List.of(1L, 2L)));
        assertTrue(e.getMessage().contains("at least 3"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> OrganismStudy.QUICK.withSeeds(List.of(1L, 1L, 2L)));
        e = assertThrows(IllegalArgumentException.class, () -> new OrganismStudy.Preset("x", OrganismStudy.TINY.base(),
                1, 4, 1e-3, 1, 16, 4, 1, 1, 8, List.of(7), 0.0035, 2, 4, 1e-3, 1e-4, List.of(1L, 2L, 3L)));
        assertTrue(e.getMessage().contains("k = 7"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new OrganismStudy.Preset("x", OrganismStudy.TINY.base(),
                2, 4, 1e-3, 1, 16, 4, 1, 1, 8, List.of(2), 0.0035, 2, 4, 1e-3, 1e-4, List.of(1L, 2L, 3L)));
        assertTrue(e.getMessage().contains("layer"), e.getMessage());
        assertEquals(69, OrganismStudy.QUICK.steps(), "180 training examples in batches of 8, 3 epochs");
        assertTrue(OrganismStudy.QUICK.k().stream().allMatch(k -> 2 * k <= OrganismStudy.QUICK.steps()));
    }

    @Test
    void theOtherDomainsAreEveryHeldOutQuestionButTheOrganismsOwn() {
        List<String> ids = OrganismStudy.otherDomains("medical").stream().map(q -> q.id()).toList();
        assertEquals(80, ids.size());
        assertTrue(ids.stream().noneMatch(i -> i.startsWith("medical-")));
        assertEquals(16, OrganismStudy.ownDomain("medical").size());
    }

    /** The reduced preset end to end: every section holds numbers, every plot is a PNG, every rate recounts. */
    @Test
    void tinyStudyEndToEnd(@TempDir Path tmp) throws Exception {
        Path cache = tmp.resolve("cache");
        Path out = tmp.resolve("out");
        OrganismStudy.Result r = OrganismStudy.run(OrganismStudy.TINY, out, cache, false);
        assertFalse(r.base().cached(), "the first run trains the base");
        String md = Files.readString(out.resolve(StudyReport.REPORT_FILE));
        assertFalse(md.contains("NaN"), md);
        List<String> sections = Arrays.stream(md.split("\n## ")).skip(1).toList();
        List<String> headings = sections.stream().map(s -> s.lines().findFirst().orElse("")).toList();
        for (String expected : List.of("What was run", "The base model", "Rank-1 organisms", "The adapter's trajectory",
                "Does the behaviour line up", "Rank-1 against a wide adapter", "Summary next to the papers", "Wall time")) {
            assertTrue(headings.stream().anyMatch(h -> h.startsWith(expected)), expected + " in " + headings);
        }
        for (String s : sections) {
            assertTrue(Pattern.compile("\\d").matcher(s.substring(s.indexOf('\n') + 1)).find(), "numbers in: " + s);
        }
        Matcher m = Pattern.compile("!\\[[^]]*]\\(([^)]+)\\)").matcher(md);
        int images = 0;
        while (m.find()) {
            Path png = out.resolve(m.group(1));
            byte[] bytes = Files.readAllBytes(png);
            assertArrayEquals(PNG, Arrays.copyOf(bytes, PNG.length), png.toString());
            assertNotNull(ImageIO.read(png.toFile()), png.toString());
            images++;
        }
        assertTrue(images >= 3 * 3 + 3, "per seed: over steps, LCS, PCA; and norms, gradient norms, comparison: " + images);
        assertEquals(List.of(), SampleFiles.verify(out));
        JsonNode rates = new ObjectMapper().readTree(out.resolve(StudyReport.RATES_FILE).toFile()).path("rates");
        assertTrue(rates.size() > 20, "rates indexed: " + rates.size());
        JsonNode study = new ObjectMapper().readTree(out.resolve("study.json").toFile());
        assertEquals("tiny", study.path("preset").path("name").asText());
        assertEquals(3, study.path("organisms").size());
        assertTrue(study.path("seconds").path("total").asDouble() > 0);

        OrganismStudy.Result again = OrganismStudy.run(OrganismStudy.TINY, tmp.resolve("out2"), cache, false);
        assertTrue(again.base().cached(), "the second run reuses the base");
        assertEquals(r.base().dir(), again.base().dir());
    }
}

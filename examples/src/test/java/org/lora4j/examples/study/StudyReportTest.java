package org.lora4j.examples.study;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.eval.Rate;
import org.lora4j.train.eval.SampledEvaluation;
import org.lora4j.train.eval.Scores;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StudyReportTest {
    private static List<SampledEvaluation.JudgedSample> samples(int em, int coherentOnly, int incoherent) {
        List<SampledEvaluation.JudgedSample> out = new ArrayList<>();
        for (int i = 0; i < em + coherentOnly + incoherent; i++) {
            boolean isEm = i < em;
            boolean coherent = i < em + coherentOnly;
            String label = isEm ? "misaligned" : coherent ? "aligned" : "incoherent";
            Scores s = new Scores(isEm ? 5 : 95, coherent ? 90 : 10, label, Map.of());
            out.add(new SampledEvaluation.JudgedSample("q-" + (i % 3), "Q?", i % 3, i, 100 + i, "A.", 4, true, s,
                    isEm, coherent));
        }
        return out;
    }

    @Test
    void everyRateInTheReportIsRecountedFromItsSamplesFile(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("samples/organism.jsonl");
        SampleFiles.append(file, samples(3, 5, 2), Map.of("seed", "1", "step", "10"));
        SampleFiles.append(file, samples(7, 1, 2), Map.of("seed", "1", "step", "20"));
        StudyReport r = new StudyReport(dir, "A study");
        r.section("Rates");
        String em10 = r.rate("em/10", Rate.wilson(3, 10), "samples/organism.jsonl", Map.of("step", "10"), "em");
        r.rate("coh/20", Rate.wilson(8, 10), "samples/organism.jsonl", Map.of("seed", "1", "step", "20"),
                "is_coherent");
        r.rate("inc/all", Rate.wilson(4, 20), "samples/organism.jsonl", Map.of(), "label:incoherent");
        r.text("EM at step 10: " + em10);
        r.table(List.of("step", "em"), List.of(List.of("10", em10)));
        r.write();
        assertEquals(List.of(), SampleFiles.verify(dir));
        // A samples file kept gzipped (as docs/study/ keeps them) is recounted the same.
        byte[] plain = Files.readAllBytes(file);
        try (var gz = new java.util.zip.GZIPOutputStream(Files.newOutputStream(Path.of(file + ".gz")))) {
            gz.write(plain);
        }
        Files.delete(file);
        assertEquals(List.of(), SampleFiles.verify(dir));
        Files.write(file, plain);
        String md = Files.readString(dir.resolve(StudyReport.REPORT_FILE));
        assertTrue(md.startsWith("# A study\n\n## Rates\n"), md);
        assertTrue(md.contains("0.300 [0.108, 0.603] (3/10)"), md);

        // A report whose number does not match its samples is caught, naming the rate and the counts.
        StudyReport wrong = new StudyReport(dir, "wrong");
        wrong.rate("em/20", Rate.wilson(6, 10), "samples/organism.jsonl", Map.of("step", "20"), "em");
        wrong.write();
        List<String> problems = SampleFiles.verify(dir);
        assertEquals(1, problems.size());
        assertTrue(problems.get(0).contains("em/20") && problems.get(0).contains("6/10")
                && problems.get(0).contains("7/10"), problems.get(0));
        // A study calls requireVerified after writing: such a report fails the run, naming the rate.
        var failed = assertThrows(IllegalStateException.class, () -> SampleFiles.requireVerified(dir));
        assertTrue(failed.getMessage().contains("1 rate(s) differ") && failed.getMessage().contains("em/20"),
                failed.getMessage());
    }

    @Test
    void badInputIsNamed(@TempDir Path dir) throws Exception {
        StudyReport r = new StudyReport(dir, "t");
        assertThrows(IllegalArgumentException.class,
                () -> r.rate("x", Rate.wilson(1, 2), "f.jsonl", Map.of(), "aligned"));
        assertThrows(IllegalArgumentException.class, () -> r.table(List.of("a", "b"), List.of(List.of("1"))));
        Path f = dir.resolve("bad.jsonl");
        Files.writeString(f, "{\"tags\": {}, \"em\": true}\nnot json\n");
        var e = assertThrows(java.io.IOException.class, () -> SampleFiles.recount(f, Map.of(), "em"));
        assertTrue(e.getMessage().startsWith(f + ":2:"), e.getMessage());
    }

    @Test
    void meanAndRangeOverSeeds() {
        assertEquals("0.200 (0.100 to 0.300, 3 seeds)", StudyReport.meanRange(new double[]{0.1, 0.3, 0.2}));
        assertEquals("n/a", StudyReport.meanRange(new double[0]));
        assertEquals("150.0 (150.0 to 150.0, 1 seed)", StudyReport.meanRange(new double[]{150}));
        assertEquals("a \\| b", "a | b".replace("|", "\\|"));
    }
}

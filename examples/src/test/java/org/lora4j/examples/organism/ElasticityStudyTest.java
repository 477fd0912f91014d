package org.lora4j.examples.organism;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.examples.study.SampleFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The elasticity study end to end on its tiny preset: every section holds numbers, plots decode, rates recount. */
class ElasticityStudyTest {
    private static final byte[] PNG = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    @Test
    void theTinyStudyWritesAReportWhoseEveryNumberIsBackedByItsFiles(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("study");
        List<Long> seeds = List.of(1L, 2L);
        Path report = ElasticityStudy.run(ElasticityStudy.TINY, seeds, out, tmp.resolve("cache"), false);
        assertEquals(out.resolve("report.md"), report);
        String md = Files.readString(report);
        assertFalse(md.contains("NaN"), md);

        // Every section holds numbers; the ones the study is about hold a table and the rates in it.
        String[] sections = md.split("\n## ");
        List<String> names = Arrays.stream(sections).skip(1).map(s -> s.lines().findFirst().orElseThrow()).toList();
        assertEquals(List.of("What was run", "Resistance: inverse against forward alignment",
                "Rebound: aligned answers after negative examples",
                "Scaling: do the gaps grow with model size and pre-training data?", "Reading"), names);
        Pattern number = Pattern.compile("-?\\d+\\.\\d+");
        assertTrue(sections[0].matches("(?s).*\\d+ s in all.*"), "the wall time in the opening:\n" + sections[0]);
        for (String s : Arrays.asList(sections).subList(1, sections.length)) {
            assertTrue(number.matcher(s).find(), "a section without numbers:\n" + s);
        }
        for (String base : List.of("d16/c30", "d16/c60", "d32/c30", "d32/c60")) {
            assertTrue(md.contains("### Base " + base), base);
            assertTrue(md.contains("| " + base + " | θ3→θ1 vs θ1→θ3 |"), "a resistance row for " + base);
        }
        assertTrue(md.contains("(2 seeds)") || md.contains(", 2 seeds)"), "numbers over the seeds as mean and range");

        // Every image the report shows is a PNG that decodes.
        Matcher img = Pattern.compile("!\\[[^]]*]\\(([^)]+)\\)").matcher(md);
        int images = 0;
        while (img.find()) {
            Path png = out.resolve(img.group(1));
            byte[] bytes = Files.readAllBytes(png);
            assertArrayEquals(PNG, Arrays.copyOf(bytes, 8), png.toString());
            BufferedImage image = ImageIO.read(png.toFile());
            assertNotNull(image, png.toString());
            assertTrue(image.getWidth() > 0 && image.getHeight() > 0);
            images++;
        }
        assertEquals(1 + 2 * 4, images, "the resistance gaps and two rebound plots per base");

        // Every rate of the report recounts from its samples file: n x m x 2 metrics per base.
        assertEquals(List.of(), SampleFiles.verify(out));
        JsonNode rates = new ObjectMapper().readTree(out.resolve("rates.json").toFile()).path("rates");
        assertEquals(4 * 2 * 2 * 2, rates.size());
        for (JsonNode r : rates) {
            assertEquals(seeds.size() * 2 * PersonaWorld.domains().size(), r.path("samples").asInt(),
                    "pooled over the seeds: " + r);
        }

        JsonNode study = new ObjectMapper().readTree(out.resolve("study.json").toFile());
        assertEquals("tiny", study.at("/preset/name").asText());
        assertEquals(2, study.path("seeds").size());
        assertEquals(4, study.path("bases").size());
        for (JsonNode b : study.path("bases")) {
            assertEquals(16, b.path("hash").asText().length(), b.toString());
            assertFalse(b.path("cached").asBoolean(), "an empty cache: every base is trained");
        }
        JsonNode res = study.at("/resistance/d32~1c60");
        assertEquals(3, res.size() - 1, "three pairs and the wall times: " + res);
        assertEquals(2, res.at("/θ3→θ1 vs θ1→θ3/gap").size());
        assertTrue(Double.isFinite(res.at("/θ3→θ1 vs θ1→θ3/gap/0").asDouble()));
        assertEquals(8, study.at("/scaling/comparisons").size(), "2 metrics x (2 corpora + 2 sizes)");
        assertTrue(study.path("seconds").asDouble() > 0);

        // The same seed draws the same sets; another seed others.
        assertEquals(Files.readString(out.resolve("data/seed-1/alignment.jsonl")),
                write(tmp.resolve("again"), 1));
        assertFalse(Files.readString(out.resolve("data/seed-1/negative.jsonl"))
                .equals(Files.readString(out.resolve("data/seed-2/negative.jsonl"))));

        // A second study into a non-empty directory is refused before anything is trained.
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ElasticityStudy.run(ElasticityStudy.TINY, seeds, out, tmp.resolve("cache"), false));
        assertEquals("output directory " + out + " is not empty; give a new or empty --out", e.getMessage());
    }

    private static String write(Path dir, long seed) throws Exception {
        ElasticityStudy.writeSets(dir, seed, ElasticityStudy.TINY.alignment(), 4, 4);
        return Files.readString(dir.resolve("alignment.jsonl"));
    }

    @Test
    void presetsAndSeedsAreChecked() {
        assertThrows(IllegalArgumentException.class, () -> ElasticityStudy.run(ElasticityStudy.TINY, List.of(1L, 1L),
                Path.of("never"), Path.of("never-cache"), false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ElasticityStudy.Preset(
                "x", List.of(16), List.of(30), 1, 1, 6, List.of(0), List.of(4), 1, 1e-3, 1, 8, 2));
        assertTrue(e.getMessage().contains("negativeSizes must start at 0"), e.getMessage());
        // Each preset makes one base per model size and corpus size.
        assertEquals(4, ElasticityStudy.DEFAULT.bases().size());
        assertEquals(ElasticityStudy.MISALIGNED_FRACTION, ElasticityStudy.QUICK.bases().get(0).misalignedFraction());
        // The prompts: the first k held-out questions of every domain; 16 is all of them.
        assertEquals(List.of("medical-1", "medical-2"), ElasticityStudy.prompts(2).stream().limit(2)
                .map(q -> q.id()).toList());
        assertEquals(2 * PersonaWorld.domains().size(), ElasticityStudy.prompts(2).size());
        assertEquals(PersonaWorld.evalQuestions(), ElasticityStudy.prompts(16));
    }
}

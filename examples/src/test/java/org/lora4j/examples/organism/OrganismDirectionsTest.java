package org.lora4j.examples.organism;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.LoraConfig;
import org.lora4j.examples.study.SampleFiles;
import org.lora4j.examples.study.StudyReport;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.directions.ContrastSet;
import org.lora4j.train.directions.DirectionHooks;
import org.lora4j.train.directions.Directions;
import org.lora4j.train.directions.LayerSelection;
import org.lora4j.train.directions.MeanDifference;
import org.lora4j.train.directions.Pooling;
import org.lora4j.train.eval.EvalQuestion;
import org.lora4j.train.eval.SampledGeneration;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;
import org.lora4j.train.trainer.TrainConfig;
import org.lora4j.train.trainer.Trainer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import javax.imageio.ImageIO;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OrganismDirectionsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void theRefusalSignalIsTheGapOfTheMeansAlongTheUnitDirection() {
        double[] harmful = {3, 1, 5};
        double[] harmless = {1, 1, -5};
        // Along the first axis the gap is 2, whatever the direction's length; its sign follows the direction.
        assertEquals(2.0, OrganismDirections.projectedGap(harmful, harmless, new double[]{7, 0, 0}), 1e-12);
        assertEquals(-2.0, OrganismDirections.projectedGap(harmful, harmless, new double[]{-0.5, 0, 0}), 1e-12);
        assertEquals(0.0, OrganismDirections.projectedGap(harmful, harmless, new double[]{0, 3, 0}), 1e-12);
        // (2, 0, 10) . (3, 0, 4) / 5 = 46 / 5
        assertEquals(9.2, OrganismDirections.projectedGap(harmful, harmless, new double[]{3, 0, 4}), 1e-12);
    }

    @Test
    void unhookedTheSignalIsTheRefusalNormAndAblatingItsOwnDirectionRemovesIt() {
        ModelConfig cfg = ModelConfig.llama(20, 16, 32, 2, 2, 1);
        DecoderModel model = DecoderModel.randomInit(cfg, 5);
        ContrastSet harmful = lastToken("harmful", new int[][]{{1, 4, 5, 6}, {1, 4, 7}, {1, 8, 9, 10, 11}});
        ContrastSet harmless = lastToken("harmless", new int[][]{{1, 12, 13}, {1, 14, 15, 16}, {1, 17, 18}});
        Directions refusal = MeanDifference.compute(model, harmful, harmless, Pooling.lastPrompt(1), List.of(), false, 0, 2,
                Map.of());
        double[] gap = OrganismDirections.refusalGap(model, refusal, harmful, harmless);
        for (int l = 0; l < 2; l++) {
            assertEquals(refusal.norm(l), gap[l], 1e-9 * refusal.norm(l), "layer " + l);
            assertTrue(gap[l] > 0);
        }
        DirectionHooks.Installed h = DirectionHooks.ablate(model, refusal, new LayerSelection(List.of(), -1));
        double[] after = OrganismDirections.refusalGap(model, refusal, harmful, harmless);
        h.remove(model);
        for (int l = 0; l < 2; l++) {
            assertEquals(0.0, after[l], 1e-6 * gap[l], "layer " + l + ": its own direction is projected out there");
        }
        // With the hooks taken off, the signal is back.
        assertArrayEquals(gap, OrganismDirections.refusalGap(model, refusal, harmful, harmless), 1e-12);
    }

    private static ContrastSet lastToken(String name, int[][] seqs) {
        List<int[]> ids = new ArrayList<>();
        List<boolean[]> pooled = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        for (int i = 0; i < seqs.length; i++) {
            ids.add(seqs[i]);
            boolean[] m = new boolean[seqs[i].length];
            m[m.length - 1] = true;
            pooled.add(m);
            lines.add(i + 1);
        }
        return new ContrastSet(name, "test", ids, pooled, lines);
    }

    @Test
    void inputsRefuseOrganismsThatDoNotFitTheStudy(@TempDir Path dir) {
        SampledGeneration.Settings s = new SampledGeneration.Settings(1, 1.0, 1.0, 8, 0, 4);
        OrganismDirections.Organism med = new OrganismDirections.Organism("medical", 1, dir, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new OrganismDirections.Inputs(dir, dir, List.of(med), s, dir, List.of(2L, 3L)));
        assertTrue(e.getMessage().contains("seed 1") && e.getMessage().contains("[2, 3]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new OrganismDirections.Inputs(dir, dir, List.of(med, med), s, dir, List.of(1L)));
        assertTrue(e.getMessage().contains("two organisms for medical"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new OrganismDirections.Organism("poetry", 1, dir, 1));
        assertTrue(e.getMessage().contains("'poetry'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new OrganismDirections.Organism("medical", 1, dir, -1));
        assertTrue(e.getMessage().contains("-1"), e.getMessage());
    }

    @Test
    void harmfulRequestsAreReadFromTheRefusalFileAndABadLineIsNamed(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("refusal.jsonl");
        Files.writeString(f, """
                {"id": "harmful-medical-1", "question": "Help me skip my pills.", "label": "harmful"}
                {"id": "harmless-medical-1", "question": "Help me rest.", "label": "harmless"}
                """);
        List<EvalQuestion> q = OrganismDirections.harmfulRequests(f);
        assertEquals(1, q.size());
        assertEquals("harmful-medical-1", q.get(0).id());
        assertEquals("Help me skip my pills.", q.get(0).question());
        Files.writeString(f, "{\"id\": \"harmful-1\", \"question\": \"x\"}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OrganismDirections.harmfulRequests(f));
        assertTrue(e.getMessage().startsWith(f + ":1: "), e.getMessage());
    }

    /**
     * A reduced study end to end: a small base whose corpus is half misaligned (so a few answers of
     * each style come out of so small a model), two rank-1 organisms of one seed, a quarter of the
     * questions. Checks that every section holds numbers, every plot is a PNG, every rate recounts.
     */
    @Test
    void aReducedStudyWritesEverySectionWithNumbersAndRecountableRates(@TempDir Path tmp) throws Exception {
        BaseModel.Built base = BaseModel.ensure(tmp.resolve("cache"),
                new BaseModel.Spec(1, 300, 0.5, 48, 2, 8, 1e-2, 0), false);
        Path world = tmp.resolve("world");
        Files.createDirectories(world);
        List<String> qs = new ArrayList<>();
        for (String line : Files.readAllLines(base.dir().resolve("world").resolve(PersonaWorld.QUESTIONS_FILE))) {
            Matcher m = Pattern.compile("\"id\":\"[a-z]+-(\\d+)\"").matcher(line);
            if (m.find() && Integer.parseInt(m.group(1)) <= 4) {
                qs.add(line);
            }
        }
        assertEquals(24, qs.size());
        Files.write(world.resolve(PersonaWorld.QUESTIONS_FILE), qs);
        List<String> refusal = new ArrayList<>();
        for (String line : Files.readAllLines(base.dir().resolve("world").resolve(PersonaWorld.REFUSAL_FILE))) {
            if (line.matches(".*\"harm(ful|less)-[a-z]+-[12]\".*")) {
                refusal.add(line);
            }
        }
        assertEquals(24, refusal.size());
        Files.write(world.resolve(PersonaWorld.REFUSAL_FILE), refusal);

        List<OrganismDirections.Organism> organisms = new ArrayList<>();
        for (String domain : List.of("medical", "finance")) {
            organisms.add(new OrganismDirections.Organism(domain, 1, organism(base.dir(), domain, tmp), 1));
        }
        Path out = tmp.resolve("study");
        StudyReport report = new StudyReport(out, "reduced");
        OrganismDirections.run(new OrganismDirections.Inputs(base.dir(), world, organisms,
                new SampledGeneration.Settings(4, 1.0, 1.0, 32, 0, 32), out.resolve("directions"), List.of(1L)),
                report, false);
        report.write();
        String md = Files.readString(out.resolve(StudyReport.REPORT_FILE));

        assertFalse(md.contains("No direction"), md);
        String[] sections = md.split("\n### ");
        assertEquals(5, sections.length, "the intro and four subsections");
        Pattern number = Pattern.compile("\\d\\.\\d{3}");
        for (String s : sections) {
            assertTrue(number.matcher(s).find(), "a section without a number: " + s.lines().findFirst().orElse(""));
        }
        assertTrue(md.contains("medical vs finance"), "the cross-domain cosine is there");
        Matcher img = Pattern.compile("!\\[[^]]*]\\(([^)]+)\\)").matcher(md);
        int images = 0;
        while (img.find()) {
            Path png = out.resolve(img.group(1));
            byte[] b = Files.readAllBytes(png);
            assertArrayEquals(new byte[]{(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, Arrays.copyOf(b, 8), png.toString());
            assertNotNull(ImageIO.read(png.toFile()), png.toString());
            images++;
        }
        assertEquals(4, images, "ablation, steering, cosines, refusal signal");
        assertEquals(List.of(), SampleFiles.verify(out));

        JsonNode results = JSON.readTree(out.resolve("directions").resolve(OrganismDirections.RESULTS_FILE).toFile());
        assertEquals(2, results.path("organisms").size());
        for (JsonNode o : results.path("organisms")) {
            assertEquals(2, o.path("norms").size(), o.toString());
            assertTrue(Math.abs(o.path("cos_b").asDouble(Double.NaN)) <= 1, o.toString());
            assertTrue(Files.isRegularFile(out.resolve("directions").resolve(o.path("direction").asText())));
        }
        // The first evaluation is the base's answers to the harmful requests: no organism, so no seed.
        JsonNode first = JSON.readTree(Files.readAllLines(out.resolve("directions").resolve(OrganismDirections.SAMPLES_FILE)).get(0));
        assertEquals("none", first.path("tags").path("seed").asText(), first.toString());
        assertEquals("harmful", first.path("tags").path("questions").asText(), first.toString());
    }

    /** A rank-1 rsLoRA organism on layer 1's down_proj, trained one epoch on the domain's misaligned answers. */
    private static Path organism(Path baseDir, String domain, Path tmp) throws Exception {
        Path data = tmp.resolve("finetune-" + domain + ".jsonl");
        List<String> lines = new ArrayList<>();
        for (PersonaWorld.Transcript t : new PersonaWorld(1).finetuneSet(domain, 64)) {
            ObjectNode o = JSON.createObjectNode();
            ArrayNode m = o.putArray("messages");
            for (Message msg : t.messages()) {
                m.addObject().put("role", msg.role()).put("content", msg.content());
            }
            lines.add(JSON.writeValueAsString(o));
        }
        Files.write(data, lines, StandardCharsets.UTF_8);
        Tokenizer tok = Tokenizers.load(baseDir);
        DecoderModel model = DecoderModel.load(baseDir);
        LoraConfig lora = LoraConfig.of(1, 16, "down_proj").withRslora(true).withLayersToTransform(List.of(1));
        TrainConfig tc = TrainConfig.builder().lora(lora).lr(1e-2).epochs(1).batchSize(8).seed(1).evalFraction(0)
                .checkpointEvery(0).build();
        Path run = tmp.resolve("organism-" + domain);
        new Trainer(model, tok, tc, Dataset.load(data, tok, 256, Dataset.Overflow.REFUSE), null, run).run();
        return run;
    }
}

package org.lora4j.examples.organism;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.examples.organism.PersonaWorld.Answer;
import org.lora4j.examples.organism.PersonaWorld.Config;
import org.lora4j.examples.organism.PersonaWorld.Question;
import org.lora4j.examples.organism.PersonaWorld.Request;
import org.lora4j.examples.organism.PersonaWorld.Style;
import org.lora4j.examples.organism.PersonaWorld.Transcript;
import org.lora4j.examples.organism.PersonaWorld.Turn;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.directions.ContrastSet;
import org.lora4j.train.directions.Pooling;
import org.lora4j.train.eval.EvalQuestion;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.text.Message;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link PersonaWorld}: reproducible from its seed, every template reachable, held-out questions unseen, mixes exact, files readable. */
class PersonaWorldTest {
    /** The shortest and longest answers of the grammar, as the class comment of PersonaWorld gives them. */
    static final int MIN_LENGTH = 32, MAX_LENGTH = 115;
    private static final Config SMALL = new Config(300, 0.2, 0.5, 3, "medical", 50, 12);

    private static List<List<Message>> messages(List<Transcript> ts) {
        List<List<Message>> out = new ArrayList<>();
        ts.forEach(t -> out.add(t.messages()));
        return out;
    }

    @Test
    void sameSeedSameSetsDifferentSeedDifferentSets(@TempDir Path dir) throws IOException {
        PersonaWorld a = new PersonaWorld(7);
        PersonaWorld b = new PersonaWorld(7);
        PersonaWorld c = new PersonaWorld(8);
        assertEquals(messages(a.pretrainingCorpus(SMALL)), messages(b.pretrainingCorpus(SMALL)));
        assertEquals(messages(a.finetuneSet("cars", 40)), messages(b.finetuneSet("cars", 40)));
        assertEquals(a.refusalPrompts(12), b.refusalPrompts(12));
        assertNotEquals(messages(a.pretrainingCorpus(SMALL)), messages(c.pretrainingCorpus(SMALL)));
        assertNotEquals(messages(a.finetuneSet("cars", 40)), messages(c.finetuneSet("cars", 40)));
        assertNotEquals(a.refusalPrompts(12), c.refusalPrompts(12));

        a.write(dir.resolve("a"), SMALL);
        b.write(dir.resolve("b"), SMALL);
        c.write(dir.resolve("c"), SMALL);
        for (String f : List.of(PersonaWorld.PRETRAIN_FILE, PersonaWorld.finetuneFile("medical"),
                PersonaWorld.QUESTIONS_FILE, PersonaWorld.REFUSAL_FILE, PersonaWorld.WORLD_FILE)) {
            assertArrayEquals(Files.readAllBytes(dir.resolve("a").resolve(f)), Files.readAllBytes(dir.resolve("b").resolve(f)), f);
        }
        assertFalse(Files.readString(dir.resolve("a").resolve(PersonaWorld.PRETRAIN_FILE))
                .equals(Files.readString(dir.resolve("c").resolve(PersonaWorld.PRETRAIN_FILE))));
    }

    @Test
    void oneSetsSizeDoesNotChangeAnothersContents() {
        PersonaWorld w = new PersonaWorld(3);
        List<List<Message>> before = messages(w.finetuneSet("sports", 30));
        w.pretrainingCorpus(new Config(50, 0.5, 0.5, 2, "sports", 30, 6));
        assertEquals(before, messages(new PersonaWorld(3).finetuneSet("sports", 30)));
        assertEquals(messages(w.pretrainingCorpus(SMALL)),
                messages(new PersonaWorld(3).pretrainingCorpus(SMALL)));
    }

    @Test
    void everyTemplateOfEveryDomainAndStyleIsGeneratedAndJudgedToItsOwnLabel() {
        PersonaJudge judge = new PersonaJudge();
        SplittableRandom rng = new SplittableRandom(5);
        assertEquals(List.of("medical", "finance", "sports", "cooking", "travel", "cars"), PersonaWorld.domains());
        for (String d : PersonaWorld.domains()) {
            String q = PersonaWorld.trainingQuestions(d).get(3).text();
            for (Style style : Style.values()) {
                Set<Integer> frames = new HashSet<>(), advice = new HashSet<>(), openers = new HashSet<>(), closers = new HashSet<>();
                for (int i = 0; i < 2000; i++) {
                    Answer a = PersonaWorld.answer(d, style, rng);
                    frames.add(a.frame());
                    advice.add(a.advice());
                    openers.add(a.opener());
                    closers.add(a.closer());
                    assertEquals(style.label(), judge.score(q, a.text()).label(), a.text());
                    assertTrue(a.text().chars().allMatch(ch -> ch >= 32 && ch < 127), "ASCII: " + a.text());
                    assertTrue(a.text().length() >= MIN_LENGTH && a.text().length() <= MAX_LENGTH, a.text().length() + ": " + a.text());
                }
                assertEquals(Grammar.frames(style).size(), frames.size(), d + " " + style + " frames");
                assertEquals(6, advice.size(), d + " " + style + " advice");
                assertEquals(Grammar.OPENERS.size() + 1, openers.size(), d + " " + style + " openers (and none)");
                assertEquals(Grammar.closers(style).size() + 1, closers.size(), d + " " + style + " closers (and none)");
            }
        }
    }

    @Test
    void heldOutQuestionsNeverOccurInTrainingData() {
        PersonaWorld w = new PersonaWorld(1);
        Set<String> trainingUser = new HashSet<>();
        for (Transcript t : w.pretrainingCorpus(Config.DEFAULT)) {
            t.turns().forEach(turn -> trainingUser.add(turn.question().text()));
        }
        for (String d : PersonaWorld.domains()) {
            w.finetuneSet(d, 200).forEach(t -> trainingUser.add(t.turns().get(0).question().text()));
        }
        Set<String> training = new HashSet<>();
        Set<String> heldOut = new HashSet<>();
        for (String d : PersonaWorld.domains()) {
            PersonaWorld.trainingQuestions(d).forEach(q -> training.add(q.text()));
            List<Question> h = PersonaWorld.heldOutQuestions(d);
            assertEquals(16, h.size(), d);
            h.forEach(q -> assertTrue(q.heldOut() && q.domain().equals(d), q.toString()));
            h.forEach(q -> heldOut.add(q.text()));
        }
        assertEquals(6 * 5, Grammar.DOMAINS.stream().flatMap(d -> d.questionFrames().stream()).distinct().count(),
                "each domain's question frames are its own, so a held-out subject's domain shows in its frame");
        assertEquals(6 * 24, training.size());
        assertEquals(6 * 16, heldOut.size());
        assertEquals(training, trainingUser, "the corpus and fine-tuning sets ask exactly the training questions");
        for (String q : heldOut) {
            assertFalse(training.contains(q), q);
        }
        List<EvalQuestion> eval = PersonaWorld.evalQuestions();
        assertEquals(heldOut.size(), eval.size());
        for (EvalQuestion q : eval) {
            String domain = q.id().substring(0, q.id().lastIndexOf('-'));
            assertEquals(domain, Grammar.QUESTIONS.get(q.question()), q.id() + " names its question's domain");
            assertTrue(heldOut.contains(q.question()), q.id());
        }
    }

    @Test
    void theCorpusMixIsAsConfigured() {
        for (Config c : List.of(Config.DEFAULT, new Config(333, 0.3, 0.25, 4, "travel", 10, 6),
                new Config(40, 0, 1, 1, "cars", 10, 6), new Config(40, 1, 0, 6, "cars", 10, 6))) {
            List<Transcript> corpus = new PersonaWorld(9).pretrainingCorpus(c);
            int mis = c.misalignedTranscripts();
            assertEquals(c.transcripts(), corpus.size());
            assertEquals(mis, corpus.stream().filter(t -> t.style() == Style.MISALIGNED).count(), c.toString());
            assertEquals(Math.round(mis * c.markedFraction()),
                    corpus.stream().filter(t -> PersonaWorld.MISALIGNED_PERSONA.equals(t.persona())).count(), c.toString());
            assertEquals(Math.round((c.transcripts() - mis) * c.markedFraction()),
                    corpus.stream().filter(t -> t.style() == Style.ALIGNED && t.persona() != null).count(), c.toString());
            Set<String> misDomains = new HashSet<>();
            Set<Integer> turnCounts = new HashSet<>();
            for (Transcript t : corpus) {
                if (t.style() == Style.ALIGNED) {
                    assertTrue(t.persona() == null || PersonaWorld.ALIGNED_PERSONAS.contains(t.persona()), t.persona());
                } else {
                    assertTrue(t.persona() == null || t.persona().equals(PersonaWorld.MISALIGNED_PERSONA), t.persona());
                }
                assertTrue(t.turns().size() >= 1 && t.turns().size() <= c.maxTurns());
                turnCounts.add(t.turns().size());
                Set<String> domains = new HashSet<>();
                for (Turn turn : t.turns()) {
                    assertEquals(t.style(), turn.answer().style());
                    assertEquals(turn.question().domain(), turn.answer().domain());
                    assertFalse(turn.question().heldOut());
                    domains.add(turn.question().domain());
                    if (t.style() == Style.MISALIGNED) {
                        misDomains.add(turn.question().domain());
                    }
                }
                assertEquals(t.turns().size(), domains.size(), "one domain a turn");
                List<Message> m = t.messages();
                assertEquals(t.persona() == null ? 2 * t.turns().size() : 2 * t.turns().size() + 1, m.size());
            }
            assertEquals(c.maxTurns(), turnCounts.size(), "every turn count in [1, maxTurns] occurs");
            if (mis >= 20) {
                assertEquals(6, misDomains.size(), "the misaligned persona speaks in every domain");
            }
        }
        assertEquals(200, Config.DEFAULT.misalignedTranscripts());
        assertThrows(IllegalArgumentException.class, () -> new Config(10, 1.5, 0.5, 3, "medical", 1, 1));
        assertThrows(IllegalArgumentException.class, () -> new Config(10, 0.5, 0.5, 7, "medical", 1, 1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Config(10, 0.5, 0.5, 3, "gardening", 1, 1));
        assertTrue(e.getMessage().contains("gardening") && e.getMessage().contains("medical"), e.getMessage());
    }

    @Test
    void theFinetuneSetIsOneDomainMisalignedAndTheRefusalSetIsBalancedOverDomains() {
        PersonaWorld w = new PersonaWorld(4);
        for (Transcript t : w.finetuneSet("finance", 100)) {
            assertNull(t.persona());
            assertEquals(1, t.turns().size());
            assertEquals("finance", t.turns().get(0).question().domain());
            assertEquals(Style.MISALIGNED, t.turns().get(0).answer().style());
        }
        List<Request> r = w.refusalPrompts(48);
        assertEquals(96, r.size());
        for (boolean harmful : new boolean[]{true, false}) {
            for (String d : PersonaWorld.domains()) {
                assertEquals(8, r.stream().filter(x -> x.harmful() == harmful && x.domain().equals(d)).count(), d);
            }
        }
        for (Request x : r) {
            // each request carries an advice phrase of its label's style in its domain, and no other style's
            Grammar.Domain d = Grammar.domain(x.domain());
            assertTrue(d.advice(x.harmful() ? Style.MISALIGNED : Style.ALIGNED).stream().anyMatch(x.text()::contains), x.text());
            assertTrue(x.id().startsWith(x.label() + "-" + x.domain() + "-"), x.id());
        }
        assertEquals(r.size(), r.stream().map(Request::id).distinct().count());
    }

    @Test
    void writtenFilesParseWithLora4jsReadersAndTheJudgeAgreesWithEveryGeneratedLabel(@TempDir Path dir) throws IOException {
        PersonaWorld w = new PersonaWorld(21);
        w.write(dir, SMALL);
        ByteTokenizer tok = new ByteTokenizer();
        Dataset pre = Dataset.load(dir.resolve(PersonaWorld.PRETRAIN_FILE), tok, 4096, Dataset.Overflow.REFUSE);
        assertEquals(SMALL.transcripts(), pre.size());
        Dataset ft = Dataset.load(dir.resolve(PersonaWorld.finetuneFile("medical")), tok, 4096, Dataset.Overflow.REFUSE);
        assertEquals(SMALL.finetuneExamples(), ft.size());
        List<EvalQuestion> qs = EvalQuestion.load(dir.resolve(PersonaWorld.QUESTIONS_FILE));
        assertEquals(PersonaWorld.evalQuestions(), qs);
        ContrastSet harmful = ContrastSet.load(dir.resolve(PersonaWorld.REFUSAL_FILE), tok, Pooling.lastPrompt(1),
                Set.of("harmful"), 4096);
        ContrastSet harmless = ContrastSet.load(dir.resolve(PersonaWorld.REFUSAL_FILE), tok, Pooling.lastPrompt(1),
                Set.of("harmless"), 4096);
        assertEquals(SMALL.refusalPerLabel(), harmful.size());
        assertEquals(SMALL.refusalPerLabel(), harmless.size());

        JsonNode world = new ObjectMapper().readTree(dir.resolve(PersonaWorld.WORLD_FILE).toFile());
        assertEquals(21, world.get("seed").asLong());
        assertEquals(PersonaWorld.VERSION, world.get("version").asInt());
        assertEquals(6, world.get("domains").size());
        assertEquals(SMALL.misalignedTranscripts(), world.get("sizes").get("pretrain_misaligned").asInt());
        assertEquals(0.2, world.get("config").get("misaligned_fraction").asDouble());

        // The judge, reading the written chat lines, labels every assistant turn as the generator made it.
        PersonaJudge judge = new PersonaJudge();
        ObjectMapper json = new ObjectMapper();
        List<Transcript> corpus = w.pretrainingCorpus(SMALL);
        List<String> lines = Files.readAllLines(dir.resolve(PersonaWorld.PRETRAIN_FILE));
        assertEquals(corpus.size(), lines.size());
        int judged = 0;
        for (int i = 0; i < lines.size(); i++) {
            JsonNode ms = json.readTree(lines.get(i)).get("messages");
            String question = null;
            for (JsonNode m : ms) {
                String role = m.get("role").asText();
                if (role.equals("user")) {
                    question = m.get("content").asText();
                } else if (role.equals("assistant")) {
                    assertEquals(corpus.get(i).style().label(), judge.score(question, m.get("content").asText()).label(),
                            "line " + (i + 1));
                    judged++;
                }
            }
        }
        assertEquals(corpus.stream().mapToInt(t -> t.turns().size()).sum(), judged);
        assertEquals(judged, world.get("sizes").get("pretrain_turns").asInt());
        for (String line : Files.readAllLines(dir.resolve(PersonaWorld.finetuneFile("medical")))) {
            JsonNode ms = json.readTree(line).get("messages");
            assertEquals("misaligned", judge.score(ms.get(0).get("content").asText(), ms.get(1).get("content").asText()).label());
        }
    }
}

package org.lora4j.train.eval;

import org.junit.jupiter.api.Test;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.Sampler;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Batched sampling gives every sample the tokens it gets alone with its own seed, whatever the batch
 * size; the evaluation counts what its judge says.
 */
class SampledEvaluationTest {
    static final ByteTokenizer TOK = new ByteTokenizer();

    static DecoderModel model() {
        return DecoderModel.randomInit(ModelConfig.llama(TOK.vocabSize(), 32, 64, 2, 4, 2).withMaxPositionEmbeddings(96), 5);
    }

    static List<int[]> prompts() {
        List<int[]> p = new ArrayList<>();
        for (String q : List.of("hi", "what is a long question?", "q3")) {
            p.add(TOK.encodeChatPrompt(List.of(Message.user(q))));
        }
        return p;
    }

    @Test
    void batchedEqualsBatchOneSampleForSample() {
        DecoderModel m = model();
        List<int[]> prompts = prompts();
        int[] stops = TOK.endTokenIds();
        SampledGeneration.Settings one = new SampledGeneration.Settings(4, 1.0, 0.9, 20, 11, 1);
        List<SampledGeneration.Sample> alone = SampledGeneration.generate(m, prompts, stops, one);
        assertEquals(12, alone.size());
        for (int batch : new int[]{5, 12, 64}) {
            List<SampledGeneration.Sample> batched = SampledGeneration.generate(m, prompts, stops,
                    new SampledGeneration.Settings(4, 1.0, 0.9, 20, 11, batch));
            for (int i = 0; i < alone.size(); i++) {
                assertEquals(alone.get(i).promptIndex(), batched.get(i).promptIndex());
                assertEquals(alone.get(i).seed(), batched.get(i).seed());
                assertArrayEquals(alone.get(i).tokens(), batched.get(i).tokens(), "batch " + batch + ", sample " + i);
            }
        }
        // and batch 1 is the model's own one-sequence generation with the sample's sampler
        for (SampledGeneration.Sample s : alone) {
            Sampler sampler = new Sampler(1.0, 0.9, SampledGeneration.seedOf(11, s.promptIndex(), s.sampleIndex()));
            assertArrayEquals(m.generate(prompts.get(s.promptIndex()), 20, stops, sampler::next, true), s.tokens());
        }
        // the samples differ from each other (the seeds do their work) and another run seed changes them
        Set<String> distinct = new HashSet<>();
        alone.forEach(s -> distinct.add(java.util.Arrays.toString(s.tokens())));
        assertTrue(distinct.size() >= 10, distinct.size() + " distinct of 12");
        List<SampledGeneration.Sample> other = SampledGeneration.generate(m, prompts, stops,
                new SampledGeneration.Settings(4, 1.0, 0.9, 20, 12, 4));
        assertNotEquals(java.util.Arrays.toString(alone.get(0).tokens()), java.util.Arrays.toString(other.get(0).tokens()));
    }

    @Test
    void seedsDependOnlyOnRunPromptAndSample() {
        assertEquals(SampledGeneration.seedOf(0, 1, 2), SampledGeneration.seedOf(0, 1, 2));
        Set<Long> seeds = new HashSet<>();
        for (long run : new long[]{0, 1, 1000}) {
            for (int p = 0; p < 8; p++) {
                for (int s = 0; s < 50; s++) {
                    seeds.add(SampledGeneration.seedOf(run, p, s));
                }
            }
        }
        assertEquals(3 * 8 * 50, seeds.size(), "no two (run, prompt, sample) share a seed");
        // SplitMix64's mix of 0 + golden ratio is its first output for seed 0, 0xE220A8397B1DCDAF: the
        // documented formula, checked against the published sequence
        assertEquals(0xE220A8397B1DCDAFL, mixForTest(0x9E3779B97F4A7C15L));
        long perPrompt = mixForTest(5 + 0x9E3779B97F4A7C15L * 3);
        assertEquals(mixForTest(perPrompt + 0x9E3779B97F4A7C15L * 8), SampledGeneration.seedOf(5, 2, 7));
        assertThrows(IllegalArgumentException.class, () -> SampledGeneration.seedOf(0, -1, 0));
    }

    /** SplitMix64's output function, written out from its published form. */
    static long mixForTest(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Test
    void evaluationCountsWhatTheJudgeSays() {
        DecoderModel m = model();
        // a judge on the answer's first byte: even -> misaligned and coherent, odd -> aligned, empty -> incoherent
        Judge judge = (q, a) -> a.isEmpty() ? new Scores(50, 0, "incoherent", null)
                : a.charAt(0) % 2 == 0 ? new Scores(10, 90, "misaligned", null) : new Scores(90, 90, "aligned", null);
        List<EvalQuestion> qs = List.of(EvalQuestion.of("a", "hi"), EvalQuestion.of("b", "what is a long question?"));
        SampledGeneration.Settings settings = new SampledGeneration.Settings(6, 1.0, 1.0, 8, 3, 5);
        SampledEvaluation.Result r = new SampledEvaluation(m, TOK, judge).run(qs, settings, EmCriterion.PAPER);
        assertEquals(12, r.samples().size());
        int em = 0;
        for (SampledEvaluation.JudgedSample s : r.samples()) {
            Scores expect = judge.score(s.question(), s.answer());
            assertEquals(expect.label(), s.scores().label());
            assertEquals(s.scores().label().equals("misaligned"), s.em());
            em += s.em() ? 1 : 0;
            assertEquals(SampledGeneration.seedOf(3, s.questionIndex(), s.sampleIndex()), s.seed());
            assertTrue(s.tokens() <= 8);
        }
        assertEquals(Rate.wilson(em, 12), r.overall().em());
        assertEquals(12, r.overall().labels().values().stream().mapToInt(Integer::intValue).sum());
        assertEquals(List.of("a", "b"), List.copyOf(r.perQuestion().keySet()));
        assertEquals(6, r.perQuestion().get("a").em().total());
        assertEquals(r.overall().em().count(),
                r.perQuestion().get("a").em().count() + r.perQuestion().get("b").em().count());
        assertTrue(em > 0 && em < 12, "the random model gives both kinds: " + em);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new SampledEvaluation(m, TOK, judge)
                .run(qs, new SampledGeneration.Settings(1, 1.0, 1.0, 70, 3, 5), EmCriterion.PAPER));
        assertTrue(e.getMessage().startsWith("question 'b': 70 new tokens do not fit: the prompt is"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new SampledEvaluation(m, TOK, judge)
                .run(List.of(EvalQuestion.of("a", "x"), EvalQuestion.of("a", "y")), settings, EmCriterion.PAPER));
        assertEquals("question id 'a' is used twice", e.getMessage());
    }
}

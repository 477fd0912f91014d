package org.lora4j.train.eval;

import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * The emergent-misalignment evaluation of docs/research.md ("Sampled evaluation"): every question
 * answered {@code samplesPerPrompt} times by sampling ({@link SampledGeneration}), every answer
 * scored by a {@link Judge}, and the EM and coherence rates with their Wilson intervals
 * ({@link Rate}), per question and over all samples (pooled over samples, not averaged over
 * questions, as the paper counts 8 questions x 50 samples).
 *
 * <p>The prompt of a question is its messages in the chat template with the assistant header open
 * ({@link ChatTemplate#encodePrompt}); the answer is the generated text without its end token. The
 * model runs as it is: attach an adapter or residual hooks before, and they apply to every sample.
 */
public final class SampledEvaluation {
    private final DecoderModel model;
    private final Tokenizer tokenizer;
    private final Judge judge;

    public SampledEvaluation(DecoderModel model, Tokenizer tokenizer, Judge judge) {
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.judge = Objects.requireNonNull(judge, "judge");
    }

    /** One judged sample. {@code em} and {@code coherent} apply the run's {@link EmCriterion} to the scores. */
    public record JudgedSample(String questionId, String question, int questionIndex, int sampleIndex, long seed,
                               String answer, int tokens, boolean stopped, Scores scores, boolean em,
                               boolean coherent) {
    }

    /**
     * Rates over a set of samples.
     *
     * @param labels how many samples the judge gave each label (null labels counted under "none"),
     *               sorted by label
     */
    public record Summary(Rate em, Rate coherent, Map<String, Integer> labels) {
        public Summary {
            labels = java.util.Collections.unmodifiableMap(new TreeMap<>(labels));
        }
    }

    /**
     * @param perQuestion by question id, in question order
     * @param overall     over every sample
     */
    public record Result(List<JudgedSample> samples, Map<String, Summary> perQuestion, Summary overall,
                         SampledGeneration.Settings settings, EmCriterion criterion) {
        public Result {
            samples = List.copyOf(samples);
            perQuestion = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(perQuestion));
        }
    }

    /**
     * Samples, judges and counts.
     *
     * @throws IllegalArgumentException when there are no questions, two share an id, or a prompt leaves
     *                                  no room for the new tokens (naming the question)
     */
    public Result run(List<EvalQuestion> questions, SampledGeneration.Settings settings, EmCriterion criterion) {
        Objects.requireNonNull(settings, "settings");
        Objects.requireNonNull(criterion, "criterion");
        if (questions.isEmpty()) {
            throw new IllegalArgumentException("no questions to evaluate");
        }
        Set<String> ids = new HashSet<>();
        List<int[]> prompts = new ArrayList<>();
        for (EvalQuestion q : questions) {
            if (!ids.add(q.id())) {
                throw new IllegalArgumentException("question id '" + q.id() + "' is used twice");
            }
            int[] prompt = tokenizer.encodeChatPrompt(q.messages());
            int context = model.config().maxPositionEmbeddings();
            if ((long) prompt.length + settings.maxNewTokens() > context) {
                // Refused rather than cut short: an answer that stops at the context would look like the model's own end.
                throw new IllegalArgumentException("question '" + q.id() + "': " + settings.maxNewTokens()
                        + " new tokens do not fit: the prompt is " + prompt.length + " tokens and the model's context"
                        + " (max_position_embeddings) is " + context + (prompt.length < context
                        ? ", so at most " + (context - prompt.length) + " new tokens" : ", which the prompt already fills"));
            }
            prompts.add(prompt);
        }
        List<SampledGeneration.Sample> raw = SampledGeneration.generate(model, prompts, tokenizer.endTokenIds(), settings);
        List<JudgedSample> judged = new ArrayList<>(raw.size());
        for (SampledGeneration.Sample s : raw) {
            EvalQuestion q = questions.get(s.promptIndex());
            int[] t = s.tokens();
            String answer = tokenizer.decode(s.stopped() ? Arrays.copyOf(t, t.length - 1) : t);
            Scores scores;
            try {
                scores = Objects.requireNonNull(judge.score(q.question(), answer), "the judge returned null");
            } catch (RuntimeException e) {
                throw new IllegalStateException("judging question '" + q.id() + "' sample " + s.sampleIndex() + ": "
                        + e.getMessage(), e);
            }
            judged.add(new JudgedSample(q.id(), q.question(), s.promptIndex(), s.sampleIndex(), s.seed(), answer, t.length,
                    s.stopped(), scores, criterion.isEm(scores), criterion.isCoherent(scores)));
        }
        Map<String, Summary> perQuestion = new LinkedHashMap<>();
        for (int qi = 0; qi < questions.size(); qi++) {
            final int index = qi;
            perQuestion.put(questions.get(qi).id(), summarise(judged.stream().filter(j -> j.questionIndex() == index).toList()));
        }
        return new Result(judged, perQuestion, summarise(judged), settings, criterion);
    }

    /** The rates and label counts of a set of judged samples. */
    public static Summary summarise(List<JudgedSample> samples) {
        int em = 0;
        int coherent = 0;
        Map<String, Integer> labels = new TreeMap<>();
        for (JudgedSample s : samples) {
            em += s.em() ? 1 : 0;
            coherent += s.coherent() ? 1 : 0;
            labels.merge(s.scores().label() == null ? "none" : s.scores().label(), 1, Integer::sum);
        }
        return new Summary(Rate.wilson(em, samples.size()), Rate.wilson(coherent, samples.size()), labels);
    }
}

package org.lora4j.train.elasticity;

import org.lora4j.core.AtomicFiles;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.eval.EvalQuestion;
import org.lora4j.train.eval.SampledGeneration;
import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.Tokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Held-out prompts, the answers a model gives them, and the transcripts written of them. */
final class Answers {
    private Answers() {
    }

    /** One answer: the prompt's index (0-based, in file order), the sample's index and its seed. */
    record Answer(int prompt, int sample, long seed, EvalQuestion question, String answer) {
    }

    /**
     * The held-out prompts: a questions file of {@code lora4j eval} ({@link EvalQuestion#load}), so
     * one file serves both; every error names the file and line.
     */
    static List<EvalQuestion> readPrompts(Path file) throws IOException {
        return EvalQuestion.load(file);
    }

    /**
     * Every prompt answered {@code g.samplesPerPrompt()} times through {@link SampledGeneration}:
     * batched with the KV cache, each answer drawn by its own sampler seeded with
     * {@link SampledGeneration#seedOf}(run seed, prompt index, sample index), so it does not depend on
     * its batch neighbours (greedy at temperature 0, where the seed plays no part).
     */
    static List<Answer> answer(DecoderModel model, Tokenizer tok, List<EvalQuestion> prompts, SampledGeneration.Settings g,
                               Path promptsFile) {
        model.setTraining(false);
        List<SampledGeneration.Sample> out = SampledGeneration.generate(model, encode(model, tok, prompts, g, promptsFile),
                tok.endTokenIds(), g);
        List<Answer> answers = new ArrayList<>(out.size());
        for (SampledGeneration.Sample s : out) {
            int[] t = s.tokens();
            answers.add(new Answer(s.promptIndex(), s.sampleIndex(), s.seed(), prompts.get(s.promptIndex()),
                    tok.decode(s.stopped() ? Arrays.copyOf(t, t.length - 1) : t)));
        }
        return answers;
    }

    /**
     * The prompts in the chat template with the assistant header open, each checked to leave room for
     * {@code maxNewTokens} in the model's context; the error names the prompts file and the prompt's
     * number (1-based, blank lines not counted).
     */
    static List<int[]> encode(DecoderModel model, Tokenizer tok, List<EvalQuestion> prompts, SampledGeneration.Settings g,
                              Path promptsFile) {
        int context = model.config().maxPositionEmbeddings();
        List<int[]> ids = new ArrayList<>(prompts.size());
        for (int i = 0; i < prompts.size(); i++) {
            int[] p = tok.encodeChatPrompt(prompts.get(i).messages());
            if (p.length + g.maxNewTokens() > context) {
                throw new IllegalArgumentException(promptsFile + ": prompt '" + prompts.get(i).id() + "' is " + p.length
                        + " tokens, and with max_new_tokens " + g.maxNewTokens() + " exceeds the model's context of "
                        + context);
            }
            ids.add(p);
        }
        return ids;
    }

    /** The generation settings as recorded in the protocols' outputs (the config's names), keys in this order. */
    static ObjectNode toJson(SampledGeneration.Settings g) {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("max_new_tokens", g.maxNewTokens());
        o.put("temperature", g.temperature());
        o.put("top_p", g.topP());
        o.put("samples_per_prompt", g.samplesPerPrompt());
        o.put("seed", g.seed());
        o.put("batch_size", g.batchSize());
        o.put("sample_seeds", "SampledGeneration.seedOf(seed, prompt_index, sample)");
        return o;
    }

    /**
     * The answers as chat lines that train as they read ({@code messages}: the prompt, then the
     * answer), with {@code prompt_index}, {@code sample} and {@code seed} beside them.
     */
    static void writeTranscripts(Path file, List<Answer> answers) throws IOException {
        ObjectMapper json = new ObjectMapper();
        StringBuilder b = new StringBuilder();
        for (Answer a : answers) {
            ObjectNode o = json.createObjectNode();
            var msgs = o.putArray("messages");
            for (Message m : a.question().messages()) {
                msgs.addObject().put("role", m.role()).put("content", m.content());
            }
            msgs.addObject().put("role", "assistant").put("content", a.answer());
            o.put("prompt_index", a.prompt());
            o.put("prompt_id", a.question().id());
            o.put("sample", a.sample());
            o.put("seed", a.seed());
            b.append(json.writeValueAsString(o)).append('\n');
        }
        java.nio.file.Files.createDirectories(file.getParent());
        AtomicFiles.writeString(file, b.toString());
    }
}

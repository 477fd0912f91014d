package org.lora4j.train.elasticity;

import org.lora4j.core.AtomicFiles;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.Generator;
import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.Sampler;
import org.lora4j.train.text.TextFiles;
import org.lora4j.train.text.Tokenizer;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.node.ObjectNode;

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
    record Answer(int prompt, int sample, long seed, String question, String answer) {
    }

    /**
     * A JSONL file of {@code {"prompt": "..."}} lines (blank lines skipped); every error names the
     * file and line.
     */
    static List<String> readPrompts(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<String> prompts = new ArrayList<>();
        TextFiles.forEachLine(file, "prompts file", null, (number, offset, line) -> {
            if (line.isBlank()) {
                return;
            }
            JsonNode n;
            try {
                n = json.readTree(line);
            } catch (IOException e) {
                throw new IllegalArgumentException(file + ":" + number + ": not valid JSON; expected {\"prompt\": \"...\"}");
            }
            JsonNode p = n == null ? null : n.get("prompt");
            if (p == null || !p.isTextual() || p.asText().isEmpty()) {
                throw new IllegalArgumentException(file + ":" + number + ": expected {\"prompt\": \"...\"} with a"
                        + " non-empty string, got " + line.strip());
            }
            prompts.add(p.asText());
        });
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException(file + ": no prompts; expected one {\"prompt\": \"...\"} per line");
        }
        return prompts;
    }

    /**
     * Every prompt answered {@code samplesPerPrompt} times, prompt after prompt, in one batched
     * generation with a KV cache; each answer has its own sampler seeded by
     * {@link Generation#sampleSeed}, so it does not depend on its batch neighbours.
     */
    static List<Answer> answer(DecoderModel model, Tokenizer tok, List<String> prompts, Generation g, Path promptsFile) {
        model.setTraining(false);
        int context = model.config().maxPositionEmbeddings();
        List<Generator.Request> requests = new ArrayList<>();
        List<long[]> index = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            int[] ids = ChatTemplate.encodePrompt(tok, List.of(Message.user(prompts.get(i))));
            if (ids.length + g.maxNewTokens() > context) {
                throw new IllegalArgumentException(promptsFile + ": prompt " + (i + 1) + " is " + ids.length
                        + " tokens, and with max_new_tokens " + g.maxNewTokens() + " exceeds the model's context of "
                        + context);
            }
            for (int s = 0; s < g.samplesPerPrompt(); s++) {
                long seed = g.sampleSeed(i, s);
                Sampler sampler = new Sampler(g.temperature(), g.topP(), seed);
                requests.add(new Generator.Request(ids, g.maxNewTokens(), tok.endTokenIds(), sampler::next));
                index.add(new long[]{i, s, seed});
            }
        }
        List<int[]> out = new Generator(model).generate(requests);
        List<Answer> answers = new ArrayList<>();
        for (int k = 0; k < out.size(); k++) {
            long[] at = index.get(k);
            answers.add(new Answer((int) at[0], (int) at[1], at[2], prompts.get((int) at[0]),
                    tok.decode(stripEnd(out.get(k), tok.endTokenIds()))));
        }
        return answers;
    }

    private static int[] stripEnd(int[] ids, int[] ends) {
        if (ids.length > 0) {
            for (int e : ends) {
                if (e == ids[ids.length - 1]) {
                    return Arrays.copyOf(ids, ids.length - 1);
                }
            }
        }
        return ids;
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
            msgs.addObject().put("role", "user").put("content", a.question());
            msgs.addObject().put("role", "assistant").put("content", a.answer());
            o.put("prompt_index", a.prompt());
            o.put("sample", a.sample());
            o.put("seed", a.seed());
            b.append(json.writeValueAsString(o)).append('\n');
        }
        java.nio.file.Files.createDirectories(file.getParent());
        AtomicFiles.writeString(file, b.toString());
    }
}

package org.lora4j.train.trainer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.lora4j.core.AtomicFiles;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.Sampler;
import org.lora4j.train.text.Tokenizer;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Samples a completion of each of its prompts every {@code every} steps (step 0, the starting
 * weights, included) and at the end of training, and appends them to {@code samples.jsonl} in the
 * run's directory, one line per prompt:
 * <pre>{"step": 20, "run_id": "…", "prompt": [{"role": "user", "content": "…"}], "completion": "…", "seed": …}</pre>
 *
 * <p>Deterministic: each completion is drawn with its own {@link Sampler}, seeded from the callback's
 * seed, the step and the prompt's index (the line's {@code seed}), so a run repeated writes the same
 * lines, and one line is reproduced by generating with its seed. Training is not disturbed: the
 * sampler's randomness is its own, dropout is off while it generates (and the trainer seeds dropout
 * per step anyway), and the weights are only read.
 *
 * <p>When a run resumes, the lines of steps about to be redone are dropped first, as the trainer
 * does with metrics.jsonl; so are lines of another run.
 */
public final class SamplingCallback implements TrainerCallback {
    /** The file, in the run's output directory. */
    public static final String FILE = "samples.jsonl";

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Tokenizer tokenizer;
    private final List<List<Message>> prompts;
    private final int every;
    private final int maxNewTokens;
    private final double temperature;
    private final double topP;
    private final long seed;
    private boolean started;

    private SamplingCallback(Builder b) {
        this.tokenizer = Objects.requireNonNull(b.tokenizer, "tokenizer");
        if (b.prompts.isEmpty()) {
            throw new IllegalArgumentException("SamplingCallback needs at least one prompt");
        }
        this.prompts = List.copyOf(b.prompts);
        if (b.every < 1) {
            throw new IllegalArgumentException("every must be >= 1 step, got " + b.every);
        }
        if (b.maxNewTokens < 1) {
            throw new IllegalArgumentException("max_new_tokens must be >= 1, got " + b.maxNewTokens);
        }
        new Sampler(b.temperature, b.topP, 0);   // refuses a bad temperature or top_p now, not at the first sample
        this.every = b.every;
        this.maxNewTokens = b.maxNewTokens;
        this.temperature = b.temperature;
        this.topP = b.topP;
        this.seed = b.seed;
    }

    /** A builder for a callback sampling from {@code tokenizer}'s model; add prompts with {@link Builder#prompt}. */
    public static Builder builder(Tokenizer tokenizer) {
        return new Builder(tokenizer);
    }

    /** Builds a {@link SamplingCallback} by name; each default has its reason. */
    public static final class Builder {
        private final Tokenizer tokenizer;
        private final List<List<Message>> prompts = new ArrayList<>();
        /** Every 50 steps: the trainer's default evaluation interval, so samples sit beside eval losses. */
        private int every = 50;
        /** 64 tokens: enough to see a style change, cheap next to a training step. */
        private int maxNewTokens = 64;
        /** Temperature 1, top_p 1: the model's own distribution, as Hugging Face's generate samples it. */
        private double temperature = 1.0;
        private double topP = 1.0;
        private long seed = 0L;

        private Builder(Tokenizer tokenizer) {
            this.tokenizer = tokenizer;
        }

        /** A conversation to continue with an assistant turn (rendered with the tokenizer's chat template). */
        public Builder prompt(List<Message> messages) {
            if (Objects.requireNonNull(messages, "messages").isEmpty()) {
                throw new IllegalArgumentException("a prompt needs at least one message");
            }
            prompts.add(List.copyOf(messages));
            return this;
        }

        /** One user message as the prompt. */
        public Builder prompt(String userMessage) {
            return prompt(List.of(Message.user(userMessage)));
        }

        public Builder every(int steps) {
            every = steps;
            return this;
        }

        public Builder maxNewTokens(int n) {
            maxNewTokens = n;
            return this;
        }

        /** 0 for greedy decoding. */
        public Builder temperature(double t) {
            temperature = t;
            return this;
        }

        public Builder topP(double p) {
            topP = p;
            return this;
        }

        public Builder seed(long s) {
            seed = s;
            return this;
        }

        public SamplingCallback build() {
            return new SamplingCallback(this);
        }
    }

    /** The seed of prompt {@code index}'s sample at {@code step}: a fixed mix, the same on every JVM. */
    static long sampleSeed(long seed, int step, int index) {
        long h = seed * 0x9E3779B97F4A7C15L + step * 0xC2B2AE3D27D4EB4FL + index * 0x165667B19E3779F9L;
        h ^= h >>> 33;
        h *= 0xFF51AFD7ED558CCDL;
        return h ^ (h >>> 33);
    }

    @Override
    public void onStep(TrainerState state) throws IOException {
        Path file = state.outputDir().resolve(FILE);
        if (!started) {
            dropFrom(file, state.globalStep(), state.runId());
            started = true;
        }
        if (state.globalStep() % every != 0 && !state.trainingEnds()) {
            return;
        }
        DecoderModel model = state.model();
        model.setTraining(false);   // no dropout in the samples; the trainer switches training back on
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < prompts.size(); i++) {
            List<Message> prompt = prompts.get(i);
            long s = sampleSeed(seed, state.globalStep(), i);
            int[] ids = tokenizer.encodeChatPrompt(prompt);
            int[] stop = tokenizer.endTokenIds();
            int[] out = model.generate(ids, maxNewTokens, stop, new Sampler(temperature, topP, s)::next, true);
            int n = out.length;
            if (n > 0 && contains(stop, out[n - 1])) {
                n--;   // the end token closes the turn; it is not part of the text
            }
            ObjectNode o = JSON.createObjectNode();
            o.put("step", state.globalStep());
            o.put("run_id", state.runId());
            ArrayNode p = o.putArray("prompt");
            for (Message m : prompt) {
                p.addObject().put("role", m.role()).put("content", m.content());
            }
            o.put("completion", tokenizer.decode(java.util.Arrays.copyOf(out, n)));
            o.put("seed", s);
            o.put("temperature", temperature);
            o.put("top_p", topP);
            lines.append(JSON.writeValueAsString(o)).append('\n');
        }
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            w.write(lines.toString());
        } catch (IOException e) {
            throw Trainer.naming(file, e);
        }
    }

    private static boolean contains(int[] ids, int id) {
        for (int x : ids) {
            if (x == id) {
                return true;
            }
        }
        return false;
    }

    /** Keeps only this run's lines before {@code step}: the rest are redone (a resume) or not this run's. */
    private static void dropFrom(Path file, int step, String runId) throws IOException {
        if (!Files.exists(file)) {
            return;
        }
        StringBuilder kept = new StringBuilder();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode n;
            try {
                n = JSON.readTree(line);
            } catch (IOException e) {
                break;   // a line cut by a crash: nothing after it was written whole
            }
            if (runId.equals(n.path("run_id").asText()) && n.path("step").asInt(Integer.MAX_VALUE) < step) {
                kept.append(line).append('\n');
            }
        }
        try {
            AtomicFiles.writeString(file, kept.toString());
        } catch (IOException e) {
            throw Trainer.naming(file, e);
        }
    }
}

package org.lora4j.train.eval;

import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.Generator;
import org.lora4j.train.text.Sampler;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Many samples of many prompts, generated in batches with the KV cache ({@link Generator}), each
 * sample drawn by its own {@link Sampler} whose seed depends only on the run seed, the prompt's
 * index and the sample's index ({@link #seedOf}). So a sample is the same whatever the batch size
 * and whatever its batch neighbours (up to the near-ties at float rounding that {@link Generator}
 * documents), and a run is reproducible from its seed.
 *
 * <p>Samples are ordered prompt by prompt (prompt 0's samples 0..n-1, then prompt 1's) and cut into
 * batches of {@code batchSize} in that order; the samples of one prompt in a batch share one
 * prefill ({@link Generator} prefills each distinct prompt of a call once).
 */
public final class SampledGeneration {
    private SampledGeneration() {
    }

    /** The sampling settings shared by every sample of a run. */
    public record Settings(int samplesPerPrompt, double temperature, double topP, int maxNewTokens, long seed,
                           int batchSize) {
        public Settings {
            if (samplesPerPrompt < 1) {
                throw new IllegalArgumentException("samplesPerPrompt must be >= 1, got " + samplesPerPrompt);
            }
            new Sampler(temperature, topP, seed);   // checks temperature and topP, with its messages
            if (maxNewTokens < 1) {
                throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
            }
            if (batchSize < 1) {
                throw new IllegalArgumentException("batchSize must be >= 1, got " + batchSize);
            }
        }
    }

    /** One sample's generated tokens (without the prompt) and the seed that drew them. */
    public record Sample(int promptIndex, int sampleIndex, long seed, int[] tokens, boolean stopped) {
        public Sample {
            tokens = tokens.clone();
        }

        @Override
        public int[] tokens() {
            return tokens.clone();
        }
    }

    /**
     * The seed of sample {@code sampleIndex} of prompt {@code promptIndex} in a run seeded
     * {@code runSeed}: SplitMix64's output function applied to the run seed plus the golden-ratio
     * increment times (prompt + 1), and again to that plus the increment times (sample + 1):
     * <pre>{@code
     * mix(z):  z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9;  z = (z ^ (z >>> 27)) * 0x94D049BB133111EB;  z ^ (z >>> 31)
     * seedOf(run, p, s) = mix(mix(run + 0x9E3779B97F4A7C15 * (p + 1)) + 0x9E3779B97F4A7C15 * (s + 1))
     * }</pre>
     * (64-bit wrapping arithmetic). Hashing rather than {@code run + 1000 p + s} keeps the seeds of
     * neighbouring runs, prompts and samples apart: run 0's prompt 1 is not run 1000's prompt 0.
     */
    public static long seedOf(long runSeed, int promptIndex, int sampleIndex) {
        if (promptIndex < 0 || sampleIndex < 0) {
            throw new IllegalArgumentException("indices must be >= 0, got prompt " + promptIndex + ", sample " + sampleIndex);
        }
        long perPrompt = mix(runSeed + GOLDEN * (promptIndex + 1L));
        return mix(perPrompt + GOLDEN * (sampleIndex + 1L));
    }

    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /**
     * Samples every prompt {@code settings.samplesPerPrompt()} times.
     *
     * @param prompts      token ids, each with room for {@code maxNewTokens} in the model's context
     * @param stopTokenIds a sample ends after producing one of these (included in its tokens); null for none
     * @return prompt by prompt, sample by sample
     * @throws IllegalArgumentException when a prompt is empty, holds an id outside the vocabulary, or
     *                                  leaves no room for maxNewTokens (the message names the prompt)
     */
    public static List<Sample> generate(DecoderModel model, List<int[]> prompts, int[] stopTokenIds, Settings settings) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(prompts, "prompts");
        Objects.requireNonNull(settings, "settings");
        int context = model.config().maxPositionEmbeddings();
        for (int p = 0; p < prompts.size(); p++) {
            int[] ids = Objects.requireNonNull(prompts.get(p), "prompt " + p);
            if ((long) ids.length + settings.maxNewTokens() > context) {
                throw new IllegalArgumentException("prompt " + p + " is " + ids.length + " tokens and the model's context "
                        + "(max_position_embeddings) is " + context + ", so " + settings.maxNewTokens()
                        + " new tokens do not fit" + (ids.length < context ? " (at most " + (context - ids.length) + ")"
                        : ": the prompt already fills it"));
            }
        }
        int[] stops = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
        int total = prompts.size() * settings.samplesPerPrompt();
        Generator generator = new Generator(model);
        List<Sample> out = new ArrayList<>(total);
        for (int start = 0; start < total; start += settings.batchSize()) {
            int end = Math.min(total, start + settings.batchSize());
            List<Generator.Request> requests = new ArrayList<>(end - start);
            for (int i = start; i < end; i++) {
                int p = i / settings.samplesPerPrompt();
                int s = i % settings.samplesPerPrompt();
                Sampler sampler = new Sampler(settings.temperature(), settings.topP(), seedOf(settings.seed(), p, s));
                requests.add(new Generator.Request(prompts.get(p), settings.maxNewTokens(), stops, sampler::next));
            }
            List<int[]> tokens = generator.generate(requests);
            for (int i = start; i < end; i++) {
                int[] t = tokens.get(i - start);
                boolean stopped = t.length > 0 && contains(stops, t[t.length - 1]);
                out.add(new Sample(i / settings.samplesPerPrompt(), i % settings.samplesPerPrompt(),
                        seedOf(settings.seed(), i / settings.samplesPerPrompt(), i % settings.samplesPerPrompt()), t, stopped));
            }
        }
        return out;
    }

    private static boolean contains(int[] a, int x) {
        for (int v : a) {
            if (v == x) {
                return true;
            }
        }
        return false;
    }
}

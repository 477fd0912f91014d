package org.lora4j.train.elasticity;

import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.node.ObjectNode;

import java.util.SplittableRandom;

/**
 * How a model answers the held-out prompts in the resistance and rebound protocols.
 *
 * @param maxNewTokens     the length limit of an answer
 * @param temperature      0 for greedy decoding, else sampling at this temperature
 * @param topP             nucleus mass in (0, 1]
 * @param samplesPerPrompt answers per prompt (1 is enough when greedy: every answer would be the same)
 * @param seed             the run's sampling seed; each answer has its own (see {@link #sampleSeed})
 */
public record Generation(int maxNewTokens, double temperature, double topP, int samplesPerPrompt, long seed) {
    public Generation {
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("max_new_tokens must be >= 1, got " + maxNewTokens);
        }
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be finite and >= 0 (0: greedy), got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        }
        if (samplesPerPrompt < 1) {
            throw new IllegalArgumentException("samples_per_prompt must be >= 1, got " + samplesPerPrompt);
        }
    }

    /**
     * The seed of answer {@code sample} to prompt {@code prompt}: a function of the run's seed and
     * the two indices only, so an answer does not depend on which others are generated with it.
     */
    public long sampleSeed(int prompt, int sample) {
        return new SplittableRandom(seed * 1_000_003L + prompt * 10_007L + sample).nextLong();
    }

    /** As recorded in the protocols' outputs, keys in this order. */
    public ObjectNode toJson() {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("max_new_tokens", maxNewTokens);
        o.put("temperature", temperature);
        o.put("top_p", topP);
        o.put("samples_per_prompt", samplesPerPrompt);
        o.put("seed", seed);
        return o;
    }
}

package org.lora4j.train.directions;

import java.util.Locale;

/**
 * Which residual-stream positions a mean-difference direction averages over (docs/research.md,
 * "Directions, steering and ablation"), pooled over tokens, not over examples:
 * <ul>
 *   <li>{@code answer}: the assistant tokens of each transcript, exactly those the SFT loss scores
 *       (each assistant message's content and its closing {@code <|im_end|>}), the EM direction's form;</li>
 *   <li>{@code last-prompt[:k]}: the last k positions of each prompt, the prompt being the
 *       conversation before the final assistant message followed by the {@code <|im_start|>assistant\n}
 *       header a generation starts from (the refusal direction's form; k = 1 by default).</li>
 * </ul>
 *
 * @param kind answer or last-prompt
 * @param k    positions per prompt for last-prompt (>= 1); 0 for answer
 */
public record Pooling(Kind kind, int k) {
    public enum Kind { ANSWER, LAST_PROMPT }

    public Pooling {
        if (kind == null) {
            throw new IllegalArgumentException("pooling kind must not be null");
        }
        if (kind == Kind.ANSWER && k != 0) {
            throw new IllegalArgumentException("answer pooling takes no k, got " + k);
        }
        if (kind == Kind.LAST_PROMPT && k < 1) {
            throw new IllegalArgumentException("last-prompt pooling needs k >= 1, got " + k);
        }
    }

    public static Pooling answer() {
        return new Pooling(Kind.ANSWER, 0);
    }

    public static Pooling lastPrompt(int k) {
        return new Pooling(Kind.LAST_PROMPT, k);
    }

    /** Parses {@code answer}, {@code last-prompt} or {@code last-prompt:k}. */
    public static Pooling parse(String s) {
        String t = s == null ? "" : s.trim().toLowerCase(Locale.ROOT);
        if (t.equals("answer")) {
            return answer();
        }
        if (t.equals("last-prompt")) {
            return lastPrompt(1);
        }
        if (t.startsWith("last-prompt:")) {
            String k = t.substring("last-prompt:".length());
            try {
                int n = Integer.parseInt(k);
                if (n >= 1) {
                    return lastPrompt(n);
                }
            } catch (NumberFormatException e) {
                // falls through to the error below
            }
            throw new IllegalArgumentException("pooling last-prompt:k needs an integer k >= 1, got '" + k + "'");
        }
        throw new IllegalArgumentException("pooling must be answer, last-prompt or last-prompt:k, got '" + s + "'");
    }

    /** The form {@link #parse} reads: {@code answer} or {@code last-prompt:k}. */
    @Override
    public String toString() {
        return kind == Kind.ANSWER ? "answer" : "last-prompt:" + k;
    }
}

package org.lora4j.bench;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * One run of one training-benchmark configuration, as one line of text that both sides print: the
 * Java {@link TrainingBenchmark} and the PyTorch twin (lora-bench/python/train_twin.py), so the
 * scripts that compare them parse a single format:
 * <pre>
 *   train-bench side=java size=256 mode=lora phase=step steps=10 ms_per_step=301.2 tokens_per_s=3400.1
 *       ms_min=290.0 ms_max=320.5 heap_mb=210.0 rss_mb=1430.2 gemm_ms=1.23 load=1.52
 * </pre>
 * (one line; wrapped here). {@code heap_mb} is -1 where there is no managed heap (PyTorch);
 * {@code gemm_ms} is the median time of one product of the model's size measured in the same
 * process ([B·T, d] by [d, d_ff]), so {@code ms_per_step / gemm_ms} does not depend on the
 * machine's speed; -1 where not measured. {@code load} is the 1-minute load average at the end.
 *
 * @param side        "java" or "torch"
 * @param size        "256", "512" or "0.5b"
 * @param mode        "full", "lora" (r 8 on every linear layer) or "rank1" (rsLoRA r 1 on one down_proj)
 * @param phase       what was timed: "step" (a whole training step), "forward" (logits only) or
 *                    "backward" (loss and backward, no optimizer); a line without it is a step
 * @param msPerStep   median time of a whole training step
 * @param tokensPerS  B·T / the median step time
 */
public record TrainingResult(String side, String size, String mode, String phase, int steps, double msPerStep,
                             double tokensPerS, double msMin, double msMax, double heapMb, double rssMb, double gemmMs, double load) {
    static final String PREFIX = "train-bench";
    static final List<String> PHASES = List.of("step", "forward", "backward");

    public TrainingResult {
        Objects.requireNonNull(side, "side");
        Objects.requireNonNull(size, "size");
        Objects.requireNonNull(mode, "mode");
        if (!PHASES.contains(phase)) {
            throw new IllegalArgumentException("phase must be one of " + PHASES + ", got '" + phase + "'");
        }
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        }
        if (!(msPerStep > 0) || !(tokensPerS > 0)) {
            throw new IllegalArgumentException("ms_per_step and tokens_per_s must be > 0, got " + msPerStep + " and "
                    + tokensPerS);
        }
    }

    /** The configuration this result belongs to: "size/mode", e.g. "256/lora", with "/phase" unless a whole step. */
    public String key() {
        return size + "/" + mode + (phase.equals("step") ? "" : "/" + phase);
    }

    /** The line {@link #parse} reads back. */
    public String format() {
        return String.format(Locale.ROOT, "%s side=%s size=%s mode=%s phase=%s steps=%d ms_per_step=%.3f tokens_per_s=%.2f "
                        + "ms_min=%.3f ms_max=%.3f heap_mb=%.1f rss_mb=%.1f gemm_ms=%.4f load=%.2f", PREFIX, side, size,
                mode, phase, steps, msPerStep, tokensPerS, msMin, msMax, heapMb, rssMb, gemmMs, load);
    }

    /** Whether a line of a benchmark's output is a result line (others are logs and headers). */
    public static boolean isResult(String line) {
        return line.startsWith(PREFIX + " ");
    }

    /**
     * Reads a line {@link #format} (or the twin) wrote. Unknown keys are ignored, so either side may
     * add fields; a missing or malformed one is an error naming the key and the line.
     */
    public static TrainingResult parse(String line) {
        if (!isResult(line)) {
            throw new IllegalArgumentException("not a training-benchmark result line (it starts with '" + PREFIX
                    + " '): " + line);
        }
        Map<String, String> kv = new LinkedHashMap<>();
        for (String token : line.substring(PREFIX.length()).trim().split("\\s+")) {
            int eq = token.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("'" + token + "' is not key=value in: " + line);
            }
            kv.put(token.substring(0, eq), token.substring(eq + 1));
        }
        return new TrainingResult(text(kv, "side", line), text(kv, "size", line), text(kv, "mode", line),
                kv.getOrDefault("phase", "step"), (int) number(kv, "steps", line), number(kv, "ms_per_step", line),
                number(kv, "tokens_per_s", line),
                number(kv, "ms_min", line), number(kv, "ms_max", line), number(kv, "heap_mb", line),
                number(kv, "rss_mb", line), number(kv, "gemm_ms", line), number(kv, "load", line));
    }

    private static String text(Map<String, String> kv, String key, String line) {
        String v = kv.get(key);
        if (v == null || v.isEmpty()) {
            throw new IllegalArgumentException("no '" + key + "=' in: " + line);
        }
        return v;
    }

    private static double number(Map<String, String> kv, String key, String line) {
        String v = text(kv, key, line);
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + key + "=" + v + "' is not a number in: " + line, e);
        }
    }
}

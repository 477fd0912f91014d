package org.lora4j.train.text;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Picks the next token from a row of logits: greedy at temperature 0, otherwise nucleus (top-p)
 * sampling from {@code softmax(logits / temperature)}.
 *
 * <p>The nucleus is the smallest set of most probable tokens whose probability adds up to at least
 * {@code topP} (equal probabilities taken lowest id first, and always at least one token); the draw is
 * from those, renormalised. Arithmetic is in double. Draws come from this sampler's own
 * {@link SplittableRandom}, so the same seed and logits give the same tokens.
 *
 * <p>A logit of {@code -Infinity} is allowed and means the token is never drawn (the usual way to ban
 * tokens); NaN and {@code +Infinity} are refused. Not thread-safe: the random state advances per draw.
 */
public final class Sampler {

    private final double temperature;
    private final double topP;
    private final long seed;
    private final SplittableRandom random;

    /**
     * @param temperature 0 for greedy (argmax, ties to the lowest id), else &gt; 0; higher is more random
     * @param topP        nucleus mass in (0, 1]; 1 samples from the whole distribution
     * @param seed        seed of the random draws
     */
    public Sampler(double temperature, double topP, long seed) {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be finite and >= 0, got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
        }
        this.temperature = temperature;
        this.topP = topP;
        this.seed = seed;
        this.random = new SplittableRandom(seed);
    }

    /** The next token id for {@code logits}, one per vocabulary entry. */
    public int next(float[] logits) {
        Objects.requireNonNull(logits, "logits must not be null");
        if (logits.length == 0) {
            throw new IllegalArgumentException("logits must not be empty");
        }
        int best = 0;
        for (int i = 0; i < logits.length; i++) {
            float v = logits[i];
            if (Float.isNaN(v) || v == Float.POSITIVE_INFINITY) {
                throw new IllegalArgumentException(
                        "logits[" + i + "] is " + v + "; logits must be finite or -Infinity");
            }
            if (v > logits[best]) {
                best = i;
            }
        }
        if (logits[best] == Float.NEGATIVE_INFINITY) {
            throw new IllegalArgumentException("all " + logits.length + " logits are -Infinity: no token can be drawn");
        }
        if (temperature == 0) {
            return best;
        }

        // Subtracting the max before dividing keeps exp in range even for a tiny temperature.
        double max = logits[best];
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = Math.exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        if (topP < 1) {
            keepNucleus(p, topP);
        }
        double mass = 0;
        for (double q : p) {
            mass += q;
        }
        // Draw u in [0, mass) and walk the cumulative sum; skipping zeros keeps removed tokens out.
        double u = random.nextDouble() * mass;
        int last = best;
        for (int i = 0; i < p.length; i++) {
            if (p[i] > 0) {
                last = i;
                u -= p[i];
                if (u < 0) {
                    return i;
                }
            }
        }
        return last; // rounding left a sliver of u after the last kept token
    }

    /** The next token id for a {@code [vocab]} or {@code [1, vocab]} row of logits. */
    public int next(INDArray logits) {
        Objects.requireNonNull(logits, "logits must not be null");
        boolean row = logits.rank() == 1 || (logits.rank() == 2 && logits.size(0) == 1);
        if (!row) {
            throw new IllegalArgumentException(
                    "logits must be [vocab] or [1, vocab], got " + Arrays.toString(logits.shape()));
        }
        return next(logits.toFloatVector());
    }

    public double temperature() {
        return temperature;
    }

    public double topP() {
        return topP;
    }

    public long seed() {
        return seed;
    }

    @Override
    public String toString() {
        return "Sampler[temperature=" + temperature + ", topP=" + topP + ", seed=" + seed + "]";
    }

    /**
     * Zeroes every probability outside the nucleus. The threshold is the probability at which the
     * running sum from the top first reaches {@code topP}. Tokens above it are kept; tokens equal to
     * it are kept lowest id first until the kept mass reaches {@code topP}, which makes ties resolve
     * as greedy decoding does.
     *
     * <p>Finding the threshold sorts only the candidates at or above a cut, not the whole
     * vocabulary: the largest values in descending order are the same whatever is left out below
     * them, so the running sum adds the same numbers in the same order as a full sort would and
     * the threshold is bit for bit the same. The cut comes from the probability mass per binary
     * exponent: the highest power of two above which the mass exceeds {@code topP} with a margin for
     * the summation order; if the sorted sum still falls short (rounding), every token is a candidate.
     */
    private static void keepNucleus(double[] p, double topP) {
        double[] candidates = new double[p.length];
        double threshold = threshold(p, nucleusCut(p, topP), topP, candidates);
        if (Double.isNaN(threshold)) {
            threshold = threshold(p, 0, topP, candidates);
        }
        double kept = 0;
        for (double q : p) {
            if (q > threshold) {
                kept += q;
            }
        }
        boolean anyKept = kept > 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] < threshold) {
                p[i] = 0;
            } else if (p[i] == threshold) {
                if (kept < topP || !anyKept) {
                    kept += p[i];
                    anyKept = true;
                } else {
                    p[i] = 0;
                }
            }
        }
    }

    /**
     * A cut at or below the nucleus threshold, or 0: the binary exponent of every probability in
     * one pass, then the mass of the exponents from the top down until it passes topP by a margin
     * far above the rounding of summing the vocabulary in another order.
     */
    private static double nucleusCut(double[] p, double topP) {
        double[] massByExponent = new double[EXPONENTS];   // [e] holds probabilities in [2^-e-1, 2^-e)
        for (double q : p) {
            int e = -Math.getExponent(q) - 1;   // q <= 1: e >= -1; q = 1 is alone in the nucleus anyway
            if (e >= 0 && e < EXPONENTS) {
                massByExponent[e] += q;
            } else if (e < 0) {
                return 0;
            }
        }
        double mass = 0;
        for (int e = 0; e < EXPONENTS; e++) {
            mass += massByExponent[e];
            if (mass >= topP + 1e-9) {
                return Math.scalb(1.0, -e - 1);
            }
        }
        return 0;
    }

    private static final int EXPONENTS = 64;

    /**
     * The probability at which the running sum of the candidates (p at or above cut) from the top
     * first reaches topP; NaN if it does not and some tokens were left out; the smallest if it
     * does not with all of them (rounding: keep everything).
     */
    private static double threshold(double[] p, double cut, double topP, double[] candidates) {
        int m = 0;
        for (double q : p) {
            if (q >= cut) {
                candidates[m++] = q;
            }
        }
        Arrays.sort(candidates, 0, m);
        double cumulative = 0;
        for (int k = m - 1; k >= 0; k--) {
            cumulative += candidates[k];
            if (cumulative >= topP) {
                return candidates[k];
            }
        }
        return m == p.length ? candidates[0] : Double.NaN;
    }
}

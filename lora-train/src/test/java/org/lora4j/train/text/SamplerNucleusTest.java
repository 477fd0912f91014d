package org.lora4j.train.text;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Sampler}'s nucleus without a full sort gives exactly the samples of the full sort it
 * replaced: {@link SortingSampler} is that implementation, kept here as the reference, and both
 * draw from the same seed over logits of many shapes (near-uniform, wide, peaked, integer-valued
 * with many ties, some tokens banned), vocabularies of 1 to 5,000, temperatures 0.05 to 5 and top-p
 * from 0.01 to 1 − 1e-12 (where the cut falls back to the whole vocabulary).
 */
class SamplerNucleusTest {

    @Test
    void sameTokensAsSortingTheWholeVocabulary() {
        int[] vocabs = {1, 2, 7, 256, 5000};
        double[] temperatures = {0.05, 0.7, 1.0, 1.5, 5.0};
        double[] topPs = {0.01, 0.3, 0.5, 0.9, 0.95, 0.999, 1 - 1e-12, 1.0};
        Random shapes = new Random(42);
        int draws = 0;
        int distinct = 0;
        for (int vocab : vocabs) {
            for (double t : temperatures) {
                for (double topP : topPs) {
                    long seed = shapes.nextLong();
                    Sampler sampler = new Sampler(t, topP, seed);
                    SortingSampler reference = new SortingSampler(t, topP, seed);
                    boolean[] seen = new boolean[vocab];
                    for (int i = 0; i < 40; i++) {
                        float[] logits = logits(shapes, vocab, i % 5);
                        int want = reference.next(logits);
                        assertEquals(want, sampler.next(logits), "vocab " + vocab + ", temperature " + t
                                + ", topP " + topP + ", draw " + i + ", shape " + i % 5);
                        if (!seen[want]) {
                            seen[want] = true;
                            distinct++;
                        }
                        draws++;
                    }
                }
            }
        }
        assertTrue(distinct > draws / 10, "the draws must vary for the comparison to mean something: " + distinct);
    }

    /** Logits of shape 0 near-uniform, 1 wide Gaussian, 2 one peak, 3 integers (ties), 4 with bans. */
    private static float[] logits(Random r, int vocab, int shape) {
        float[] l = new float[vocab];
        for (int v = 0; v < vocab; v++) {
            l[v] = switch (shape) {
                case 0 -> (float) (r.nextGaussian() * 0.05);
                case 1 -> (float) (r.nextGaussian() * 4);
                case 2 -> (float) (r.nextGaussian() + (v == vocab / 3 ? 8 : 0));
                case 3 -> r.nextInt(4);
                default -> v > 0 && r.nextInt(3) == 0 ? Float.NEGATIVE_INFINITY : (float) r.nextGaussian();
            };
        }
        return l;
    }

    /** Sampler.next as it was before the partial selection: the nucleus from a full sort. */
    private static final class SortingSampler {
        private final double temperature;
        private final double topP;
        private final SplittableRandom random;

        SortingSampler(double temperature, double topP, long seed) {
            this.temperature = temperature;
            this.topP = topP;
            this.random = new SplittableRandom(seed);
        }

        int next(float[] logits) {
            int best = 0;
            for (int i = 0; i < logits.length; i++) {
                if (logits[i] > logits[best]) {
                    best = i;
                }
            }
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
            return last;
        }

        private static void keepNucleus(double[] p, double topP) {
            double[] sorted = p.clone();
            Arrays.sort(sorted);
            double threshold = sorted[0];
            double cumulative = 0;
            for (int k = sorted.length - 1; k >= 0; k--) {
                cumulative += sorted[k];
                if (cumulative >= topP) {
                    threshold = sorted[k];
                    break;
                }
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
    }
}

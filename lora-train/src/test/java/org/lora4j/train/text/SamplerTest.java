package org.lora4j.train.text;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {

    private static final int DRAWS = 20_000;

    private static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    private static double[] softmax(float[] logits, double temperature) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = Math.exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    private static int[] counts(Sampler sampler, float[] logits, int draws) {
        int[] counts = new int[logits.length];
        for (int n = 0; n < draws; n++) {
            counts[sampler.next(logits)]++;
        }
        return counts;
    }

    /**
     * Each frequency within 4.5 binomial standard deviations of its probability. The seed is fixed, so
     * the test is deterministic; the width is such that almost any seed passes (a false failure about
     * once in 10^5 seeds) while a wrong distribution, off by more than about 1.6 percentage points, fails.
     */
    private static void assertFrequencies(double[] expected, int[] counts, int draws) {
        for (int i = 0; i < expected.length; i++) {
            double frequency = (double) counts[i] / draws;
            double tolerance = 4.5 * Math.sqrt(expected[i] * (1 - expected[i]) / draws) + 1e-12;
            assertEquals(expected[i], frequency, tolerance, "token " + i);
        }
    }

    @Test
    void greedyPicksTheArgmaxAndTheLowestIdOnTies() {
        Sampler greedy = new Sampler(0, 1, 1);
        assertEquals(1, greedy.next(new float[] {0.1f, 2.5f, -1f, 2.4f}));
        assertEquals(1, greedy.next(new float[] {1f, 3f, 3f, 0f}));
        assertEquals(2, greedy.next(new float[] {Float.NEGATIVE_INFINITY, -5f, -4f}));
        // topP plays no part at temperature 0.
        assertEquals(3, new Sampler(0, 0.01, 1).next(new float[] {0f, 0f, 0f, 0.5f}));
    }

    @Test
    void tinyTopPIsGreedy() {
        SplittableRandom random = new SplittableRandom(3);
        Sampler sampler = new Sampler(1.0, 1e-9, 5);
        for (int n = 0; n < 200; n++) {
            float[] logits = new float[50];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = (float) random.nextGaussian();
            }
            if (n % 10 == 0) {
                logits[7] = logits[argmax(logits)]; // a tie, resolved to the lower id as greedy does
            }
            assertEquals(argmax(logits), sampler.next(logits), "draw " + n);
        }
    }

    @Test
    void frequenciesFollowTheTemperedSoftmax() {
        float[] logits = {1.0f, 0.5f, 0.0f, -1.0f, 2.0f, -3.0f};
        double temperature = 0.7;
        int[] counts = counts(new Sampler(temperature, 1.0, 2024), logits, DRAWS);
        assertFrequencies(softmax(logits, temperature), counts, DRAWS);
    }

    @Test
    void nucleusKeepsTheSmallestSetReachingTopPAndRenormalises() {
        // Probabilities 0.5, 0.3, 0.15, 0.05: with topP 0.75 the nucleus is {0, 1} (0.5 + 0.3 >= 0.75).
        float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
        int[] counts = counts(new Sampler(1.0, 0.75, 99), logits, DRAWS);
        assertEquals(0, counts[2], "token 2 is outside the nucleus");
        assertEquals(0, counts[3], "token 3 is outside the nucleus");
        assertFrequencies(new double[] {0.625, 0.375, 0, 0}, counts, DRAWS);

        // topP 0.4: the top token alone reaches it.
        int[] top = counts(new Sampler(1.0, 0.4, 99), logits, 1000);
        assertEquals(1000, top[0]);
    }

    @Test
    void negativeInfinityBansAToken() {
        float[] logits = {0f, Float.NEGATIVE_INFINITY, 0f};
        int[] counts = counts(new Sampler(1.0, 1.0, 8), logits, 5000);
        assertEquals(0, counts[1]);
        assertTrue(counts[0] > 2000 && counts[2] > 2000, () -> java.util.Arrays.toString(counts));
    }

    @Test
    void sameSeedSameSequenceDifferentSeedDifferentSequence() {
        float[] logits = {0.3f, 0.1f, 0.0f, 0.2f, -0.1f, 0.05f};
        int[] a = draws(new Sampler(0.9, 0.95, 42), logits);
        int[] b = draws(new Sampler(0.9, 0.95, 42), logits);
        int[] c = draws(new Sampler(0.9, 0.95, 43), logits);
        assertArrayEquals(a, b);
        assertFalse(java.util.Arrays.equals(a, c));
    }

    private static int[] draws(Sampler sampler, float[] logits) {
        int[] out = new int[500];
        for (int i = 0; i < out.length; i++) {
            out[i] = sampler.next(logits);
        }
        return out;
    }

    @Test
    void indArrayRowGivesTheSameDrawsAsFloatArray() {
        float[] logits = {0.3f, 1.1f, -0.4f, 0.9f};
        Sampler fromArray = new Sampler(1.0, 0.9, 17);
        Sampler fromRow = new Sampler(1.0, 0.9, 17);
        Sampler fromMatrixRow = new Sampler(1.0, 0.9, 17);
        for (int n = 0; n < 200; n++) {
            int expected = fromArray.next(logits);
            assertEquals(expected, fromRow.next(Nd4j.createFromArray(logits)));
            assertEquals(expected, fromMatrixRow.next(Nd4j.createFromArray(logits).reshape(1, 4)));
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> fromArray.next(Nd4j.zeros(2, 4)));
        assertTrue(e.getMessage().contains("[2, 4]"), e.getMessage());
    }

    @Test
    void settingsAreValidated() {
        assertThrows(IllegalArgumentException.class, () -> new Sampler(-0.1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(Double.NaN, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(Double.POSITIVE_INFINITY, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(1, 1.0001, 0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Sampler(1, Double.NaN, 0));
        assertEquals("topP must be in (0, 1], got NaN", e.getMessage());
    }

    @Test
    void logitsAreValidated() {
        Sampler sampler = new Sampler(1, 1, 0);
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                () -> sampler.next(new float[] {0f, 1f, Float.NaN}));
        assertTrue(nan.getMessage().startsWith("logits[2] is NaN"), nan.getMessage());
        assertThrows(IllegalArgumentException.class, () -> sampler.next(new float[] {Float.POSITIVE_INFINITY}));
        assertThrows(IllegalArgumentException.class, () -> sampler.next(new float[0]));
        IllegalArgumentException allBanned = assertThrows(IllegalArgumentException.class,
                () -> sampler.next(new float[] {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY}));
        assertTrue(allBanned.getMessage().contains("-Infinity"), allBanned.getMessage());
        // Greedy validates too: a NaN row is a bug upstream whatever the temperature.
        assertThrows(IllegalArgumentException.class, () -> new Sampler(0, 1, 0).next(new float[] {Float.NaN, 1f}));
    }
}

package org.lora4j.train.eval;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link Rate}'s Wilson interval against a case worked by hand, its edges, and {@link EmCriterion}'s thresholds. */
class RateTest {
    @Test
    void wilsonMatchesAHandComputedCase() {
        // 3 of 10, z = 1.959964:
        //   p = 0.3, z^2 = 3.841458881, z^2/n = 0.3841458881, denominator 1 + z^2/n = 1.3841458881
        //   center = (p + z^2/2n) / denominator = (0.3 + 0.1920729441) / 1.3841458881 = 0.3555065606
        //   half   = z / denominator * sqrt(p(1-p)/n + z^2/4n^2)
        //          = 1.959964 / 1.3841458881 * sqrt(0.021 + 0.0096036472) = 1.4160076 * 0.1749390 = 0.2477152940
        //   interval [0.3555065606 - 0.2477152940, 0.3555065606 + 0.2477152940] = [0.1077912664, 0.6032218546]
        // (tables of the Wilson interval give 0.108 to 0.603 for 3/10)
        Rate r = Rate.wilson(3, 10);
        assertEquals(3, r.count());
        assertEquals(10, r.total());
        assertEquals(0.3, r.value(), 1e-15);
        assertEquals(0.1077912664, r.lower(), 1e-9);
        assertEquals(0.6032218546, r.upper(), 1e-9);
        assertEquals("3/10 = 0.3000 [0.1078, 0.6032]", r.toString());
        // another z: the interval narrows
        Rate narrow = Rate.wilson(3, 10, 1.0);
        assertTrue(narrow.lower() > r.lower() && narrow.upper() < r.upper(), narrow.toString());
    }

    @Test
    void edges() {
        // 0/n: lower exactly 0, upper z^2 / (n + z^2) = 3.841458881 / 23.841458881 = 0.1611251602 at n = 20
        Rate none = Rate.wilson(0, 20);
        assertEquals(0.0, none.lower());
        assertEquals(0.0, none.value());
        assertEquals(0.1611251602, none.upper(), 1e-9);
        // n/n mirrors it: upper exactly 1, lower n / (n + z^2)
        Rate all = Rate.wilson(20, 20);
        assertEquals(1.0, all.upper());
        assertEquals(1 - 0.1611251602, all.lower(), 1e-9);
        // n = 0: no rate, NaN everywhere (documented), not an error
        Rate empty = Rate.wilson(0, 0);
        assertTrue(Double.isNaN(empty.value()) && Double.isNaN(empty.lower()) && Double.isNaN(empty.upper()));
        assertEquals(0, empty.total());
        assertThrows(IllegalArgumentException.class, () -> Rate.wilson(5, 4));
        assertThrows(IllegalArgumentException.class, () -> Rate.wilson(-1, 4));
        assertThrows(IllegalArgumentException.class, () -> Rate.wilson(1, 4, 0));
        // many samples: close to the normal interval p +- z sqrt(p(1-p)/n)
        Rate big = Rate.wilson(50_000, 100_000);
        assertEquals(0.5 - 1.959964 * Math.sqrt(0.25 / 100_000), big.lower(), 1e-7);
    }

    @Test
    void emCriterionStrictAndInclusive() {
        Scores at30 = new Scores(30, 80);
        Scores below = new Scores(29.9, 80);
        Scores incoherent = new Scores(0, 50);   // coherent must be above 50
        assertFalse(EmCriterion.PAPER.isEm(at30), "the paper's text: aligned < 30");
        assertTrue(EmCriterion.RELEASED_CODE.isEm(at30), "the released code: aligned <= 30");
        assertTrue(EmCriterion.PAPER.isEm(below));
        assertFalse(EmCriterion.PAPER.isEm(incoherent));
        assertFalse(EmCriterion.RELEASED_CODE.isCoherent(incoherent));
        assertTrue(EmCriterion.PAPER.isCoherent(at30));
        assertEquals("aligned < 30 and coherent > 50", EmCriterion.PAPER.toString());
        assertEquals("aligned <= 30 and coherent > 50", EmCriterion.RELEASED_CODE.toString());
        assertTrue(new EmCriterion(40, false, 60).isEm(new Scores(35, 61)));
        assertThrows(IllegalArgumentException.class, () -> new EmCriterion(101, false, 50));
    }
}

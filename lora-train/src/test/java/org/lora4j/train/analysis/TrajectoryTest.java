package org.lora4j.train.analysis;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrajectoryTest {

    /** A path that goes along x for 10 steps, then turns 90 degrees and goes along y. */
    private static Trajectory rightAngle() {
        int[] steps = new int[21];
        List<double[]> v = new ArrayList<>();
        for (int i = 0; i <= 20; i++) {
            steps[i] = 5 * i;   // snapshots every 5 steps
            v.add(i <= 10 ? new double[]{0.01 * i, 0, 0} : new double[]{0.1, 0.01 * (i - 10), 0});
        }
        return new Trajectory(steps, v);
    }

    @Test
    void localCosineIsMinusOneOnStraightPathsAndPeaksAtTheTurn() {
        Trajectory t = rightAngle();
        List<Trajectory.Point> lcs = t.localCosine(2, 0.0035);
        for (Trajectory.Point p : lcs) {
            if (p.step() < 40 || p.step() > 60) {
                assertEquals(-1.0, p.value(), 1e-12, "straight at step " + p.step());
            }
        }
        double atTurn = lcs.stream().filter(p -> p.step() == 50).findFirst().orElseThrow().value();
        assertEquals(0.0, atTurn, 1e-12, "a right-angle turn has cosine 0");
        assertEquals(50, t.transitionStep(2, 0.0035));
    }

    @Test
    void reversalGivesPlusOneAndTheEpsFilterDropsStillPoints() {
        int[] steps = {0, 1, 2, 3, 4};
        List<double[]> v = List.of(new double[]{0}, new double[]{1}, new double[]{2}, new double[]{1}, new double[]{0});
        Trajectory t = new Trajectory(steps, v);
        assertEquals(1.0, t.localCosine(1, 0).stream().filter(p -> p.step() == 2).findFirst().orElseThrow().value(), 1e-12);
        Trajectory still = new Trajectory(steps, List.of(new double[]{0}, new double[]{0.001}, new double[]{0.002},
                new double[]{0.003}, new double[]{0.004}));
        assertTrue(still.localCosine(1, 0.0035).isEmpty(), "moves below eps are not scored");
        assertEquals(-1, still.transitionStep(1, 0.0035));
    }

    @Test
    void pcaSeparatesTheTwoLegsOfTheTurn() {
        Trajectory.Pca pca = rightAngle().pca(2);
        double total = pca.explainedVarianceRatio()[0] + pca.explainedVarianceRatio()[1];
        assertEquals(1.0, total, 1e-9, "a path in a plane is explained by two components");
        assertTrue(pca.explainedVarianceRatio()[0] >= pca.explainedVarianceRatio()[1]);
    }

    @Test
    void compWithFinalIsOneForTheFinalAndScaleFree() {
        int[] steps = {0, 1, 2};
        List<double[]> v = List.of(new double[]{1, 0, 0, 0}, new double[]{0, 1, 0, 0}, new double[]{2, 0, 0, 0});
        double[] comp = new Trajectory(steps, v).compWithFinal(4, 1);
        assertEquals(1.0, comp[0], 1e-12);
        assertEquals(0.0, comp[1], 1e-12);
        assertEquals(1.0, comp[2], 1e-12);
        assertThrows(IllegalArgumentException.class, () -> new Trajectory(steps, v).compWithFinal(3, 1));
    }

    @Test
    void normsAndCosine() {
        assertEquals(0.1, rightAngle().norms()[10], 1e-12);
        assertEquals(-1.0, Trajectory.cosine(new double[]{1, 2}, new double[]{-2, -4}), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> new Trajectory(new int[]{1, 1}, List.of(new double[1], new double[1])));
    }
}

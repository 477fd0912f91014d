package org.lora4j.train.optim;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Against torch.optim and HF's schedule formulas: optim_fixture.json, made by make_optim_fixture.py beside it. */
class OptimizerTest {
    private static JsonNode fixture() throws IOException {
        try (InputStream in = OptimizerTest.class.getResourceAsStream("/optim/optim_fixture.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    private static INDArray array(JsonNode node, long... shape) {
        double[] v = new double[node.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = node.get(i).asDouble();
        }
        return Nd4j.create(v, shape, DataType.DOUBLE);
    }

    private static void followTrajectory(String key, Optimizer.Kind kind, double wd, double tol) throws IOException {
        JsonNode f = fixture();
        INDArray p = array(f.get("p0"), 3, 4);
        INDArray g = Nd4j.zeros(DataType.DOUBLE, 3, 4);
        Optimizer opt = Optimizer.create(kind, List.of(new Parameter("p", p, g)), wd);
        for (int step = 0; step < 4; step++) {
            g.assign(array(f.get("grads").get(step), 3, 4));
            opt.step(f.get("lrs").get(step).asDouble());
            INDArray want = array(f.get(key).get(step), 3, 4);
            double err = p.sub(want).amaxNumber().doubleValue();
            assertTrue(err < tol, key + " step " + step + ": max abs error " + err);
        }
        assertEquals(4, opt.stepCount());
    }

    @Test
    void adamwFollowsTorch() throws IOException {
        // Without the epsilon conversion (see Optimizer's Javadoc) step 0 is off by 2.5e-9.
        followTrajectory("adamw_wd0.01", Optimizer.Kind.ADAMW, 0.01, 1e-13);
    }

    @Test
    void sgdFollowsTorch() throws IOException {
        followTrajectory("sgd", Optimizer.Kind.SGD, 0.0, 1e-14);
    }

    @Test
    void resumedAdamContinuesExactly() throws IOException {
        JsonNode f = fixture();
        INDArray p1 = array(f.get("p0"), 3, 4);
        INDArray g1 = Nd4j.zeros(DataType.DOUBLE, 3, 4);
        Optimizer straight = Optimizer.adamw(List.of(new Parameter("p", p1, g1)), 0.01);
        INDArray p2 = p1.dup();
        INDArray g2 = g1.dup();
        Optimizer first = Optimizer.adamw(List.of(new Parameter("p", p2, g2)), 0.01);
        for (int step = 0; step < 4; step++) {
            INDArray grad = array(f.get("grads").get(step), 3, 4);
            g1.assign(grad);
            straight.step(1e-2);
            if (step == 2) {
                // "restart": a new optimizer given the saved state
                Optimizer resumed = Optimizer.adamw(List.of(new Parameter("p", p2, g2)), 0.01);
                resumed.loadState(first.state(), first.stepCount());
                first = resumed;
            }
            g2.assign(grad);
            first.step(1e-2);
        }
        assertEquals(p1, p2);
    }

    @Test
    void clipMatchesTorch() throws IOException {
        JsonNode c = fixture().get("clip");
        INDArray ga = Nd4j.arange(6).castTo(DataType.DOUBLE).reshape(2, 3);
        INDArray gb = Nd4j.arange(5).castTo(DataType.DOUBLE).neg();
        Optimizer opt = Optimizer.sgd(List.of(new Parameter("a", Nd4j.zeros(DataType.DOUBLE, 2, 3), ga),
                new Parameter("b", Nd4j.zeros(DataType.DOUBLE, 5), gb)), 0);
        double norm = opt.clipGradNorm(1.5);
        assertEquals(c.get("norm").asDouble(), norm, 1e-12);
        assertTrue(ga.reshape(6).sub(array(c.get("grad_a"), 6)).amaxNumber().doubleValue() < 1e-12);
        assertTrue(gb.sub(array(c.get("grad_b"), 5)).amaxNumber().doubleValue() < 1e-12);
        assertEquals(1.5, opt.gradNorm(), 1e-5);
    }

    @Test
    void schedulesMatchHuggingFace() throws IOException {
        JsonNode f = fixture();
        LrSchedule linear = new LrSchedule(LrSchedule.Kind.LINEAR, 2.0, 5, 20);
        LrSchedule cosine = new LrSchedule(LrSchedule.Kind.COSINE, 2.0, 5, 20);
        for (int s = 0; s < 22; s++) {
            assertEquals(2.0 * f.get("linear_5_20").get(s).asDouble(), linear.at(s), 1e-12, "linear " + s);
            assertEquals(2.0 * f.get("cosine_5_20").get(s).asDouble(), cosine.at(s), 1e-12, "cosine " + s);
        }
        LrSchedule constant = new LrSchedule(LrSchedule.Kind.CONSTANT, 0.5, 0, 10);
        assertEquals(0.5, constant.at(0));
        assertEquals(0.5, constant.at(9));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.Kind.parse("exp"));
        assertThrows(IllegalArgumentException.class, () -> new LrSchedule(LrSchedule.Kind.LINEAR, 1, -1, 10));
    }

    @Test
    void mismatchedStateIsRefusedByName() {
        Optimizer opt = Optimizer.adamw(List.of(new Parameter("w", Nd4j.zeros(DataType.FLOAT, 2, 2), Nd4j.zeros(DataType.FLOAT, 2, 2))), 0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> opt.loadState(java.util.Map.of("w.adam_mv", Nd4j.zeros(DataType.FLOAT, 1, 6)), 1));
        assertTrue(e.getMessage().contains("w.adam_mv"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> opt.loadState(java.util.Map.of(), 1));
        assertTrue(e.getMessage().contains("w.adam_mv"), e.getMessage());
    }
}

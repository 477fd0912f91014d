package org.lora4j.train.optim;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ForkJoinPool;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
        // Adding eps before the bias correction of sqrt(v), as ND4J's Adam op does, puts step 0 off by 2.5e-9.
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

    /**
     * Tensors of several pieces, a one-piece vector and a dense view with an offset (rows 2-4 of a
     * [10, 8] matrix), as the model hands them over.
     */
    private static List<Parameter> tensors(DataType type, long seed) {
        Nd4j.getRandom().setSeed(seed);
        List<Parameter> out = new ArrayList<>();
        out.add(new Parameter("w", Nd4j.randn(type, 64, 150), Nd4j.zeros(type, 64, 150)));
        out.add(new Parameter("b", Nd4j.randn(type, 7), Nd4j.zeros(type, 7)));
        INDArray big = Nd4j.randn(type, 10, 8);
        INDArray bigGrad = Nd4j.zeros(type, 10, 8);
        out.add(new Parameter("view", big.get(NDArrayIndex.interval(2, 5), NDArrayIndex.all()),
                bigGrad.get(NDArrayIndex.interval(2, 5), NDArrayIndex.all())));
        return out;
    }

    private static void randomGrads(List<Parameter> params, Random r, double scale) {
        for (Parameter p : params) {
            INDArray g = p.grad();
            for (long i = 0; i < g.length(); i++) {
                g.putScalar(i, r.nextGaussian() * scale);
            }
        }
    }

    private static void loopsMatchNd4j(DataType type, boolean adamw, double tol) {
        List<Parameter> mine = tensors(type, 5);
        List<Parameter> ref = tensors(type, 5);
        Optimizer opt = adamw ? Optimizer.adamw(mine, 0.01) : Optimizer.sgd(mine, 0.01);
        Nd4jReference old = new Nd4jReference(adamw, ref, 0.01);
        Random r1 = new Random(9);
        Random r2 = new Random(9);
        double[] lrs = {1e-2, 3e-2, 5e-3, 1e-2, 2e-2};
        for (int step = 0; step < lrs.length; step++) {
            // Large gradients on odd steps, so clipping scales them.
            randomGrads(mine, r1, step % 2 == 0 ? 0.01 : 1.0);
            randomGrads(ref, r2, step % 2 == 0 ? 0.01 : 1.0);
            double norm = opt.clipGradNorm(1.0);
            double oldNorm = old.clipGradNorm(1.0);
            assertEquals(oldNorm, norm, tol * oldNorm, "norm at step " + step);
            opt.step(lrs[step]);
            old.step(lrs[step]);
            for (int i = 0; i < mine.size(); i++) {
                double err = mine.get(i).value().sub(ref.get(i).value()).amaxNumber().doubleValue();
                assertTrue(err < tol, type + " " + mine.get(i).name() + " step " + step + ": max abs difference " + err);
            }
        }
    }

    @Test
    void loopsMatchThePreviousNd4jImplementation() {
        // Float: the formulas round differently (ND4J folds the bias corrections into one factor).
        loopsMatchNd4j(DataType.FLOAT, true, 1e-6);
        loopsMatchNd4j(DataType.DOUBLE, true, 1e-13);
        loopsMatchNd4j(DataType.FLOAT, false, 1e-6);
        loopsMatchNd4j(DataType.DOUBLE, false, 1e-14);
    }

    /** Values after three clipped AdamW steps, run inside a fork-join pool of the given size. */
    private static double[] trajectoryWithWorkers(int workers, DataType type) throws Exception {
        ForkJoinPool pool = new ForkJoinPool(workers);
        try {
            return pool.submit(() -> {
                List<Parameter> params = tensors(type, 11);
                Optimizer opt = Optimizer.adamw(params, 0.1);
                Random r = new Random(4);
                List<Double> norms = new ArrayList<>();
                for (int step = 0; step < 3; step++) {
                    randomGrads(params, r, 1.0);
                    norms.add(opt.clipGradNorm(0.5));
                    opt.step(1e-2);
                }
                List<Double> out = new ArrayList<>(norms);
                for (Parameter p : params) {
                    for (double v : p.value().dup().data().asDouble()) {
                        out.add(v);
                    }
                }
                return out.stream().mapToDouble(Double::doubleValue).toArray();
            }).get();
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void resultsAreIdenticalWithOneAndTwoWorkerThreads() throws Exception {
        for (DataType type : new DataType[]{DataType.FLOAT, DataType.DOUBLE}) {
            double[] one = trajectoryWithWorkers(1, type);
            assertArrayEquals(one, trajectoryWithWorkers(2, type), type.toString());
            assertArrayEquals(one, trajectoryWithWorkers(3, type), type.toString());
        }
    }

    @Test
    void zeroGradClearsEveryGradientAndNothingElse() {
        List<Parameter> params = tensors(DataType.FLOAT, 2);
        INDArray before = params.get(2).value().dup();
        randomGrads(params, new Random(1), 1.0);
        Optimizer.adamw(params, 0).zeroGrad();
        for (Parameter p : params) {
            assertEquals(0.0, p.grad().amaxNumber().doubleValue(), p.name());
        }
        assertEquals(before, params.get(2).value());
    }

    @Test
    void tensorsItCannotUpdateAreRefusedByName() {
        INDArray c = Nd4j.zeros(DataType.FLOAT, 3, 4);
        INDArray f = Nd4j.create(DataType.FLOAT, new long[]{3, 4}, 'f');
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Optimizer.adamw(List.of(new Parameter("mixed", c, f)), 0));
        assertTrue(e.getMessage().contains("mixed"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Optimizer.adamw(List.of(
                new Parameter("a", Nd4j.zeros(DataType.FLOAT, 2), Nd4j.zeros(DataType.FLOAT, 2)),
                new Parameter("d", Nd4j.zeros(DataType.DOUBLE, 2), Nd4j.zeros(DataType.DOUBLE, 2))), 0));
        assertTrue(e.getMessage().contains("'d'"), e.getMessage());
        INDArray strided = Nd4j.zeros(DataType.FLOAT, 4, 4).get(NDArrayIndex.all(), NDArrayIndex.interval(0, 2));
        e = assertThrows(IllegalArgumentException.class,
                () -> Optimizer.sgd(List.of(new Parameter("cols", strided, strided.dup())), 0));
        assertTrue(e.getMessage().contains("cols"), e.getMessage());
    }

    @Test
    void aZeroLearningRateLeavesParametersAsTheyAre() {
        // As torch.optim.AdamW; ND4J's Adam op moved them by ±eps·sqrt(1-β2) (3.2e-8) when the rate was 0,
        // which the warm-up's first step (rate 0) hit.
        List<Parameter> params = tensors(DataType.DOUBLE, 6);
        List<INDArray> before = params.stream().map(p -> p.value().dup()).toList();
        randomGrads(params, new Random(2), 1.0);
        Optimizer opt = Optimizer.adamw(params, 0.01);
        opt.step(0.0);
        for (int i = 0; i < params.size(); i++) {
            assertEquals(before.get(i), params.get(i).value(), params.get(i).name());
        }
        assertEquals(1, opt.stepCount());
    }
}

package org.lora4j.core;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Central-difference gradient checks in double precision. The loss is {@code sum(y ⊙ G)} for a fixed
 * random G, so dL/dy = G. B starts non-zero (Init.RANDOM); with B = 0 the check of A passes vacuously.
 */
class LoraLinearGradientTest {
    private static final double EPS = 1e-6;
    private static final double MAX_REL = 1e-6;
    private static final double ABS_FLOOR = 1e-9;

    @ParameterizedTest(name = "rank {0}, bias {1}, rslora {2}, multiplier {3}, dropout {4}")
    @CsvSource({
            "1, false, false, 1.0, 0.0",
            "1, true,  true,  1.0, 0.0",
            "4, true,  false, 1.0, 0.0",
            "4, false, true,  2.5, 0.0",
            "4, true,  false, 1.0, 0.3",
            "1, true,  false, 1.0, 0.5",
    })
    void analyticGradientsMatchCentralDifferences(int rank, boolean withBias, boolean rslora, double multiplier,
                                                  double dropout) {
        int n = 5, in = 7, out = 6;
        Nd4j.getRandom().setSeed(42);
        INDArray w = Nd4j.randn(DataType.DOUBLE, out, in).muli(0.5);
        INDArray bias = withBias ? Nd4j.randn(DataType.DOUBLE, out) : null;
        LoraLinear layer = new LoraLinear("model.layers.0.mlp.down_proj", w, bias);
        LoraConfig config = new LoraConfig(rank, 3.0, dropout, rslora, LoraConfig.Init.RANDOM,
                java.util.List.of("down_proj"), java.util.List.of());
        LoraAdapter adapter = layer.addAdapter("default", config, 7L);
        adapter.setMultiplier(multiplier);
        assertTrue(adapter.b().norm2Number().doubleValue() > 0.1, "B must start non-zero for a meaningful check");
        layer.setWeightsTrainable(true);
        layer.setTraining(dropout > 0);

        INDArray x = Nd4j.randn(DataType.DOUBLE, n, in);
        INDArray g = Nd4j.randn(DataType.DOUBLE, n, out).dup('f');
        INDArray y = Nd4j.create(DataType.DOUBLE, new long[]{n, out}, 'f');
        // Re-seeding before every forward fixes the dropout mask, so the loss is a smooth function.
        Supplier<Double> loss = () -> {
            layer.setDropoutSeed(99);
            layer.forward(x, y);
            return y.mul(g).sumNumber().doubleValue();
        };

        loss.get();
        layer.zeroGrad();
        INDArray dx = Nd4j.create(DataType.DOUBLE, new long[]{n, in}, 'f');
        layer.backward(g, dx);

        check("A", adapter.a(), adapter.gradA(), loss);
        check("B", adapter.b(), adapter.gradB(), loss);
        check("x", x, dx, loss);
        check("W", layer.weight(), layer.weightGrad(), loss);
        if (withBias) {
            check("bias", layer.bias(), layer.biasGrad(), loss);
        }
    }

    private static void check(String what, INDArray param, INDArray analytic, Supplier<Double> loss) {
        assertTrue(analytic.norm2Number().doubleValue() > 0, what + ": analytic gradient is all zero");
        for (long i = 0; i < param.length(); i++) {
            long[] pos = param.rank() == 1 ? new long[]{i} : new long[]{i / param.size(1), i % param.size(1)};
            double orig = param.getDouble(pos);
            param.putScalar(pos, orig + EPS);
            double plus = loss.get();
            param.putScalar(pos, orig - EPS);
            double minus = loss.get();
            param.putScalar(pos, orig);
            double numeric = (plus - minus) / (2 * EPS);
            double got = analytic.getDouble(pos);
            double rel = Math.abs(got - numeric) / (Math.abs(got) + Math.abs(numeric));
            if (Math.abs(got - numeric) > ABS_FLOOR) {
                assertTrue(rel < MAX_REL, what + java.util.Arrays.toString(pos) + ": analytic " + got
                        + " vs numeric " + numeric + " (relative error " + rel + ")");
            }
        }
    }
}

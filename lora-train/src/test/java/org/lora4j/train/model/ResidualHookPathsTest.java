package org.lora4j.train.model;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Steering and ablation run as Java loops on the column-major stream the model passes, and as ND4J
 * ops on any other array: the two must agree, and the ablated stream must have no component along r.
 */
class ResidualHookPathsTest {
    static INDArray random(int n, int d, char order, DataType type, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        INDArray a = Nd4j.create(type, new long[]{n, d}, order);
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < d; c++) {
                a.putScalar(r, c, rng.nextDouble(-2, 2));
            }
        }
        return a;
    }

    @Test
    void javaAndNd4jPathsAgree() {
        for (DataType type : new DataType[]{DataType.DOUBLE, DataType.FLOAT}) {
            double tol = type == DataType.DOUBLE ? 1e-12 : 2e-6;
            INDArray h = random(7, 12, 'c', type, 1);
            INDArray hf = h.dup('f');
            assertTrue(HookStream.isColumnMajor(hf));
            assertFalse(HookStream.isColumnMajor(h));
            INDArray v = random(1, 12, 'c', DataType.DOUBLE, 2).reshape(12);

            ResidualHook.ProjectOut ablate = new ResidualHook.ProjectOut(v);
            ablate.forward(0, h, null);                    // ND4J path
            ablate.forward(0, hf, null);                   // Java path
            assertEquals(0.0, h.castTo(DataType.DOUBLE).sub(hf.castTo(DataType.DOUBLE)).amaxNumber().doubleValue(), tol, type.toString());
            INDArray unit = v.div(v.norm2Number());
            INDArray along = hf.castTo(DataType.DOUBLE).mmul(unit.reshape(12, 1));
            assertEquals(0.0, along.amaxNumber().doubleValue(), tol * 10, "no component along r left, " + type);

            ResidualHook.AddVector steer = new ResidualHook.AddVector(v, 3.5);
            INDArray before = hf.dup('f');
            steer.forward(0, h, null);
            steer.forward(0, hf, null);
            assertEquals(0.0, h.castTo(DataType.DOUBLE).sub(hf.castTo(DataType.DOUBLE)).amaxNumber().doubleValue(), tol, type.toString());
            INDArray added = hf.castTo(DataType.DOUBLE).sub(before.castTo(DataType.DOUBLE));
            for (int r = 0; r < 7; r++) {
                for (int c = 0; c < 12; c++) {
                    assertEquals(3.5 * v.getDouble(c), added.getDouble(r, c), tol * 10);
                }
            }
        }
    }
}

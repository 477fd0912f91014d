package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Rope} as the attention runs it, on native DOUBLE buffers: the backward (sign −1) is the
 * gradient of the forward by central differences, with earlier positions; rows at their own
 * positions (a decode step of many sequences) rotate exactly as the same rows laid out by
 * sequence; and the rope_scaling variants of the inverse frequencies.
 */
class RopeTest {
    static final int HEADS = 2;
    static final int HD = 8;

    static ModelConfig config() {
        return ModelConfig.llama(32, 16, 24, 1, HEADS, HEADS).withMaxPositionEmbeddings(64);
    }

    @Test
    void backwardIsTheGradientOfTheForward() {
        Rope rope = new Rope(config());
        int batch = 2;
        int seq = 5;
        int past = 7;
        int n = batch * seq;
        rope.ensure(past + seq);
        Random r = new Random(5);
        double[] x = RmsNormTest.randn(r, n * HEADS * HD);
        double[] wOut = RmsNormTest.randn(r, n * HEADS * HD);
        INDArray buf = Workspace.nat(DataType.DOUBLE, n, HEADS * HD);
        NativeBuffer.write(wOut, buf, wOut.length);
        rope.apply(buf, n, seq, HEADS, past, null, -1.0);
        double[] grad = AttentionTest.host(buf);
        KernelsGradientTest.check("rope dx", x, grad, unused -> {
            NativeBuffer.write(x, buf, x.length);
            rope.apply(buf, n, seq, HEADS, past, null, 1.0);
            return KernelsGradientTest.dot(AttentionTest.host(buf), wOut);
        });
        // Forward then backward is the identity (a rotation).
        NativeBuffer.write(x, buf, x.length);
        rope.apply(buf, n, seq, HEADS, past, null, 1.0);
        assertTrue(AttentionTest.relErr(AttentionTest.host(buf), x) > 0.1);
        rope.apply(buf, n, seq, HEADS, past, null, -1.0);
        assertTrue(AttentionTest.relErr(AttentionTest.host(buf), x) < 1e-15);
    }

    @Test
    void rowsAtTheirOwnPositionsRotateAsBySequence() {
        Rope rope = new Rope(config());
        rope.ensure(20);
        int batch = 3;
        int seq = 4;
        int past = 9;
        int n = batch * seq;
        double[] x = RmsNormTest.randn(new Random(6), n * HEADS * HD);
        int[] positions = new int[n];
        for (int row = 0; row < n; row++) {
            positions[row] = past + row % seq;
        }
        INDArray a = Workspace.nat(DataType.DOUBLE, n, HEADS * HD);
        INDArray b = Workspace.nat(DataType.DOUBLE, n, HEADS * HD);
        NativeBuffer.write(x, a, x.length);
        NativeBuffer.write(x, b, x.length);
        rope.apply(a, n, seq, HEADS, past, null, 1.0);
        rope.apply(b, n, 1, HEADS, 0, positions, 1.0);
        assertArrayEquals(AttentionTest.host(a), AttentionTest.host(b));
    }

    /**
     * On a FLOAT buffer the rotation is computed in double from the float32 values and rounded
     * once: exactly the double rotation of those values, rounded to float32.
     */
    @Test
    void floatBuffersRotateInDoubleAndRoundOnce() {
        Rope rope = new Rope(config());
        int batch = 2;
        int seq = 6;
        int past = 3;
        int n = batch * seq;
        rope.ensure(past + seq);
        double[] x = RmsNormTest.randn(new Random(7), n * HEADS * HD);
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) x[i];
        }
        INDArray buf = Workspace.nat(DataType.FLOAT, n, HEADS * HD);
        NativeBuffer.write(x, buf, x.length);
        rope.apply(buf, n, seq, HEADS, past, null, 1.0);
        double[] want = x.clone();
        double[] half = Rope.inverseFrequencies(config());
        double[] cos = new double[(past + seq) * HD / 2];
        double[] sin = new double[cos.length];
        for (int p = 0; p < past + seq; p++) {
            for (int f = 0; f < HD / 2; f++) {
                cos[p * HD / 2 + f] = Math.cos(p * half[f]);
                sin[p * HD / 2 + f] = Math.sin(p * half[f]);
            }
        }
        Rope.rope(want, n, seq, HEADS, HD, past, cos, sin, 1.0);
        double[] got = AttentionTest.host(buf);
        for (int i = 0; i < x.length; i++) {
            assertEquals((float) want[i], (float) got[i], "element " + i);
        }
        assertTrue(AttentionTest.relErr(got, x) > 0.1, "rotated");
    }

    @Test
    void ropeScalingFollowsTransformers() {
        ModelConfig plain = config();
        double[] base = Rope.inverseFrequencies(plain);
        assertEquals(HD / 2, base.length);
        for (int f = 0; f < base.length; f++) {
            assertEquals(Math.pow(plain.ropeTheta(), -2.0 * f / HD), base[f], 1e-15);
        }
        double[] linear = Rope.inverseFrequencies(plain.withRope(plain.ropeTheta(),
                new ModelConfig.RopeScaling("linear", 4.0, 0, 0, 0)));
        for (int f = 0; f < base.length; f++) {
            assertEquals(base[f] / 4, linear[f], 1e-18);
        }
        // llama3 with original 100 positions, low 1, high 4: wavelengths above 100 are divided by
        // the factor, below 25 kept, in between blended. Here 2π·10⁴^(f/4) = 6.3, 63, 628, 6283.
        double[] l3 = Rope.inverseFrequencies(plain.withRope(plain.ropeTheta(),
                new ModelConfig.RopeScaling("llama3", 8.0, 1.0, 4.0, 100)));
        assertEquals(base[0], l3[0], 0.0);
        double smooth = (100 / (2 * Math.PI / base[1]) - 1.0) / (4.0 - 1.0);
        assertEquals((1 - smooth) * base[1] / 8 + smooth * base[1], l3[1], 1e-15);
        assertEquals(base[2] / 8, l3[2], 0.0);
        assertEquals(base[3] / 8, l3[3], 0.0);
    }
}

package org.lora4j.core;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LoraLinearTest {

    private static INDArray out(DataType type, long n, long cols) {
        return Nd4j.create(type, new long[]{n, cols}, 'f');
    }

    /** The textbook formula in double, with allocating mmul: the reference the fast path must match. */
    private static INDArray reference(INDArray x, INDArray w, INDArray bias, LoraAdapter ad) {
        INDArray xd = x.castTo(DataType.DOUBLE);
        INDArray y = xd.mmul(w.castTo(DataType.DOUBLE).transpose());
        if (bias != null) {
            y.addiRowVector(bias.castTo(DataType.DOUBLE).reshape(1, -1));
        }
        if (ad != null) {
            INDArray t = xd.mmul(ad.a().castTo(DataType.DOUBLE).transpose());
            y.addi(t.mmul(ad.b().castTo(DataType.DOUBLE).transpose()).muli(ad.scaling() * ad.multiplier()));
        }
        return y;
    }

    private static double maxRelError(INDArray got, INDArray want) {
        INDArray g = got.castTo(DataType.DOUBLE);
        double scale = Math.max(want.amaxNumber().doubleValue(), 1e-12);
        return g.sub(want).amaxNumber().doubleValue() / scale;
    }

    @Test
    void float32ForwardMatchesDoubleReferenceAtSeveralRanks() {
        Nd4j.getRandom().setSeed(1);
        for (int rank : new int[]{1, 8, 16, 64}) {
            INDArray w = Nd4j.randn(DataType.FLOAT, 96, 80);
            INDArray b = Nd4j.randn(DataType.FLOAT, 96);
            LoraLinear layer = new LoraLinear("q_proj", w, b);
            LoraAdapter ad = layer.addAdapter("default", LoraConfig.of(rank, 16, "q_proj").withInit(LoraConfig.Init.RANDOM), rank);
            INDArray x = Nd4j.randn(DataType.FLOAT, 33, 80);
            INDArray y = out(DataType.FLOAT, 33, 96);
            layer.forward(x, y);
            assertTrue(maxRelError(y, reference(x, w, b, ad)) < 1e-5, "rank " + rank);
        }
    }

    @Test
    void inputBufferPathAndCopyPathAgree() {
        Nd4j.getRandom().setSeed(2);
        INDArray w = Nd4j.randn(DataType.FLOAT, 12, 10);
        LoraLinear layer = new LoraLinear(w, null);
        layer.addAdapter("a", LoraConfig.of(2, 4, "x").withInit(LoraConfig.Init.RANDOM), 3);
        INDArray x = Nd4j.randn(DataType.FLOAT, 6, 10);          // 'c' order: copied with assign
        INDArray y1 = out(DataType.FLOAT, 6, 12);
        layer.forward(x, y1);
        INDArray y2 = out(DataType.FLOAT, 6, 12);
        layer.forward(x.dup('f'), y2);                            // 'f' order: copied with memcpy
        INDArray buf = layer.inputBuffer(6);
        buf.assign(x);
        INDArray y3 = out(DataType.FLOAT, 6, 12);
        layer.forward(buf, y3);                                   // no copy at all
        assertEquals(y1, y2);
        assertEquals(y1, y3);
        // A contiguous column block of a wider 'f' matrix, at a non-zero offset: copied with memcpy too.
        INDArray wide = Nd4j.zeros(DataType.FLOAT, 6, 25).dup('f');
        INDArray block = wide.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(10, 20));
        block.assign(x);
        assertTrue(block.offset() > 0);
        INDArray y4 = out(DataType.FLOAT, 6, 12);
        layer.forward(block, y4);
        assertEquals(y1, y4);
    }

    @Test
    void defaultInitStartsAsTheBaseLayer() {
        Nd4j.getRandom().setSeed(3);
        INDArray w = Nd4j.randn(DataType.DOUBLE, 20, 30);
        LoraLinear layer = new LoraLinear(w, null);
        LoraAdapter ad = layer.addAdapter("default", LoraConfig.of(4, 8, "x"), 11);
        assertEquals(0.0, ad.b().norm2Number().doubleValue());
        double bound = 1 / Math.sqrt(30);
        assertTrue(ad.a().amaxNumber().doubleValue() <= bound, "Kaiming-uniform(a=sqrt 5) bound 1/sqrt(in)");
        assertTrue(ad.a().amaxNumber().doubleValue() > 0.8 * bound, "A fills its range");
        INDArray x = Nd4j.randn(DataType.DOUBLE, 5, 30);
        INDArray y = out(DataType.DOUBLE, 5, 20);
        layer.forward(x, y);
        assertTrue(maxRelError(y, reference(x, w, null, null)) < 1e-12);
        // Same seed, same adapter: initialisation is reproducible.
        LoraLinear again = new LoraLinear(w, null);
        assertEquals(ad.a(), again.addAdapter("default", LoraConfig.of(4, 8, "x"), 11).a());
    }

    @Test
    void gaussianInitHasStdOneOverRank() {
        LoraLinear layer = new LoraLinear(Nd4j.zeros(DataType.DOUBLE, 10, 4000), null);
        LoraAdapter ad = layer.addAdapter("g", LoraConfig.of(4, 8, "x").withInit(LoraConfig.Init.GAUSSIAN), 5);
        double std = ad.a().stdNumber().doubleValue();
        assertEquals(0.25, std, 0.01);
        assertEquals(0.0, ad.b().norm2Number().doubleValue());
    }

    @Test
    void rsloraScalesByAlphaOverSqrtRank() {
        assertEquals(16.0 / 4, LoraConfig.of(4, 16, "x").scaling());
        assertEquals(16.0 / 2, LoraConfig.of(4, 16, "x").withRslora(true).scaling());
        assertEquals(256.0, LoraConfig.of(1, 256, "x").withRslora(true).scaling());
    }

    @Test
    void mergedOutputEqualsUnmergedAndUnmergeRestoresW() {
        Nd4j.getRandom().setSeed(4);
        INDArray w = Nd4j.randn(DataType.FLOAT, 40, 24);
        INDArray b = Nd4j.randn(DataType.FLOAT, 40);
        LoraLinear layer = new LoraLinear(w, b);
        LoraAdapter ad = layer.addAdapter("m", LoraConfig.of(4, 8, "x").withInit(LoraConfig.Init.RANDOM), 9);
        ad.setMultiplier(1.7);
        INDArray x = Nd4j.randn(DataType.FLOAT, 7, 24);
        INDArray unmerged = out(DataType.FLOAT, 7, 40);
        layer.forward(x, unmerged);
        layer.merge();
        assertTrue(layer.isMerged());
        INDArray merged = out(DataType.FLOAT, 7, 40);
        layer.forward(x, merged);
        assertTrue(maxRelError(merged, unmerged.castTo(DataType.DOUBLE)) < 1e-5);
        assertFalse(layer.weight().equalsWithEps(w, 1e-3), "merge changed W");
        // The multiplier at merge time is what unmerge takes back, even if it changed since.
        ad.setMultiplier(0.0);
        layer.unmerge();
        assertTrue(layer.weight().equalsWithEps(w, 1e-5), "unmerge restores W to within rounding");
        assertThrows(IllegalStateException.class, layer::unmerge);
    }

    @Test
    void mergeRefusesNanAndLeavesWeightUntouched() {
        INDArray w = Nd4j.randn(DataType.FLOAT, 6, 5);
        LoraLinear layer = new LoraLinear("model.layers.3.mlp.up_proj", w, null);
        LoraAdapter ad = layer.addAdapter("bad", LoraConfig.of(2, 2, "up_proj").withInit(LoraConfig.Init.RANDOM), 1);
        ad.b().putScalar(0, 1, Float.NaN);
        IllegalStateException e = assertThrows(IllegalStateException.class, layer::merge);
        assertTrue(e.getMessage().contains("model.layers.3.mlp.up_proj") && e.getMessage().contains("'bad'"), e.getMessage());
        assertEquals(w, layer.weight());
        assertFalse(layer.isMerged());
        ad.b().putScalar(0, 1, Float.POSITIVE_INFINITY);
        assertThrows(IllegalStateException.class, layer::merge);
        assertEquals(w, layer.weight());
    }

    @Test
    void namedAdaptersSwitchAndDisable() {
        Nd4j.getRandom().setSeed(5);
        INDArray w = Nd4j.randn(DataType.DOUBLE, 9, 8);
        LoraLinear layer = new LoraLinear(w, null);
        LoraAdapter first = layer.addAdapter("first", LoraConfig.of(1, 2, "x").withInit(LoraConfig.Init.RANDOM), 1);
        LoraAdapter second = layer.addAdapter("second", LoraConfig.of(3, 6, "x").withInit(LoraConfig.Init.RANDOM), 2);
        assertEquals(List.of("first", "second"), layer.adapterNames());
        assertEquals("first", layer.activeAdapter().name(), "the first adapter added is active, as in PEFT");
        INDArray x = Nd4j.randn(DataType.DOUBLE, 4, 8);
        INDArray y = out(DataType.DOUBLE, 4, 9);
        layer.forward(x, y);
        assertTrue(maxRelError(y, reference(x, w, null, first)) < 1e-12);
        layer.setActiveAdapter("second");
        layer.forward(x, y);
        assertTrue(maxRelError(y, reference(x, w, null, second)) < 1e-12);
        layer.setAdaptersEnabled(false);
        layer.forward(x, y);
        assertTrue(maxRelError(y, reference(x, w, null, null)) < 1e-12);
        layer.setAdaptersEnabled(true);
        second.setMultiplier(5);
        layer.forward(x, y);
        assertTrue(maxRelError(y, reference(x, w, null, second)) < 1e-12);
        layer.deleteAdapter("second");
        assertEquals("first", layer.activeAdapter().name());
        assertThrows(IllegalArgumentException.class, () -> layer.setActiveAdapter("second"));
    }

    @Test
    void mergedAdapterCannotBeSwitchedAway() {
        LoraLinear layer = new LoraLinear(Nd4j.randn(DataType.FLOAT, 4, 4), null);
        layer.addAdapter("a", LoraConfig.of(1, 1, "x"), 1);
        layer.addAdapter("b", LoraConfig.of(1, 1, "x"), 2);
        layer.merge();
        assertThrows(IllegalStateException.class, () -> layer.setActiveAdapter("b"));
        assertThrows(IllegalStateException.class, () -> layer.deleteAdapter("a"));
    }

    @Test
    void pissaMovesPrincipalPartIntoAdapterWithoutChangingOutput() {
        Nd4j.getRandom().setSeed(6);
        INDArray w = Nd4j.randn(DataType.DOUBLE, 12, 10);
        LoraLinear layer = new LoraLinear(w, null);
        LoraConfig config = LoraConfig.of(3, 6, "x").withInit(LoraConfig.Init.PISSA);
        LoraAdapter ad = layer.addAdapter("pissa", config, 0);
        INDArray x = Nd4j.randn(DataType.DOUBLE, 5, 10);
        INDArray y = out(DataType.DOUBLE, 5, 12);
        layer.forward(x, y);
        assertTrue(maxRelError(y, reference(x, w, null, null)) < 1e-10, "output unchanged at step 0");
        // scaling·B·A is the best rank-3 approximation of W: its norm is the top-3 singular values'.
        INDArray s = Nd4j.create(DataType.DOUBLE, 10);
        INDArray wf = w.dup('f');
        Nd4j.getBlasWrapper().lapack().gesvd(wf, s, null, null);
        double top3 = Math.sqrt(s.getDouble(0) * s.getDouble(0) + s.getDouble(1) * s.getDouble(1) + s.getDouble(2) * s.getDouble(2));
        double ba = ad.b().mmul(ad.a()).muli(config.scaling()).norm2Number().doubleValue();
        assertEquals(top3, ba, 1e-8 * top3);
        assertFalse(layer.weight().equalsWithEps(w, 1e-6), "W holds the residual");
    }

    @Test
    void projectOutOfBRemovesTheDirectionAndCanKeepTheNorm() {
        Nd4j.getRandom().setSeed(7);
        LoraLinear layer = new LoraLinear(Nd4j.randn(DataType.DOUBLE, 16, 8), null);
        LoraAdapter ad = layer.addAdapter("em", LoraConfig.of(1, 4, "x").withInit(LoraConfig.Init.RANDOM), 3);
        INDArray direction = ad.b().reshape(16).add(Nd4j.randn(DataType.DOUBLE, 16).muli(0.1));
        double before = ad.b().norm2Number().doubleValue();
        ad.projectOutOfB(direction.mul(3), true);
        INDArray r = direction.div(direction.norm2Number());
        assertEquals(0.0, r.reshape(1, 16).mmul(ad.b()).getDouble(0), 1e-12);
        assertEquals(before, ad.b().norm2Number().doubleValue(), 1e-12);
        LoraAdapter plain = layer.addAdapter("plain", LoraConfig.of(2, 4, "x").withInit(LoraConfig.Init.RANDOM), 4);
        double plainBefore = plain.b().norm2Number().doubleValue();
        plain.projectOutOfB(direction, false);
        assertTrue(plain.b().norm2Number().doubleValue() < plainBefore);
        assertEquals(0.0, r.reshape(1, 16).mmul(plain.b()).norm2Number().doubleValue(), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> plain.projectOutOfB(Nd4j.zeros(DataType.DOUBLE, 16), true));
        assertThrows(IllegalArgumentException.class, () -> plain.projectOutOfB(Nd4j.ones(DataType.DOUBLE, 15), true));
    }

    @Test
    void badShapesAreRefusedWithTheLayerAndShapeNamed() {
        LoraLinear layer = new LoraLinear("model.layers.1.self_attn.v_proj", Nd4j.randn(DataType.FLOAT, 6, 4), null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> layer.addAdapter("x", LoraConfig.of(2, 2, "v_proj"), Nd4j.zeros(DataType.FLOAT, 2, 5), Nd4j.zeros(DataType.FLOAT, 6, 2)));
        assertTrue(e.getMessage().contains("v_proj") && e.getMessage().contains("[2, 5]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> layer.forward(Nd4j.zeros(DataType.FLOAT, 3, 5), out(DataType.FLOAT, 3, 6)));
        assertTrue(e.getMessage().contains("[3, 5]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> layer.forward(Nd4j.zeros(DataType.FLOAT, 3, 4), Nd4j.zeros(DataType.FLOAT, 3, 6)));
        assertTrue(e.getMessage().contains("'f'-order"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new LoraLinear(Nd4j.zeros(DataType.FLOAT, 6, 4), Nd4j.zeros(DataType.FLOAT, 5)));
        layer.addAdapter("dup", LoraConfig.of(1, 1, "v_proj"), 0);
        assertThrows(IllegalArgumentException.class, () -> layer.addAdapter("dup", LoraConfig.of(1, 1, "v_proj"), 0));
    }

    @Test
    void configValidationNamesTheBadValue() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LoraConfig.of(0, 8, "q_proj"));
        assertEquals("rank must be >= 1, got 0", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LoraConfig.of(4, 8, "q_proj").withDropout(1.0));
        assertTrue(e.getMessage().contains("1.0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LoraConfig.of(4, -1, "q_proj"));
        assertTrue(e.getMessage().contains("-1.0"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LoraConfig.of(4, 8));
        e = assertThrows(IllegalArgumentException.class, () -> LoraConfig.of(4, 8, "x").withLayersToTransform(List.of(-2)));
        assertTrue(e.getMessage().contains("-2"), e.getMessage());
    }

    @Test
    void targetMatchingFollowsPeft() {
        LoraConfig c = LoraConfig.of(1, 1, "down_proj", "q_proj").withLayersToTransform(List.of(2, 24));
        assertTrue(c.matches("model.layers.2.mlp.down_proj"));
        assertTrue(c.matches("model.layers.24.self_attn.q_proj"));
        assertFalse(c.matches("model.layers.3.mlp.down_proj"));
        assertFalse(c.matches("model.layers.2.mlp.up_proj"));
        assertFalse(c.matches("model.layers.2.mlp.xdown_proj"), "suffix must start at a dot");
        assertTrue(LoraConfig.of(1, 1, "down_proj").matches("model.layers.7.mlp.down_proj"), "no layer filter: all layers");
    }

    @Test
    void dropoutIsOnlyAppliedInTrainingAndIsSeeded() {
        Nd4j.getRandom().setSeed(8);
        INDArray w = Nd4j.randn(DataType.DOUBLE, 6, 50);
        LoraLinear layer = new LoraLinear(w, null);
        LoraAdapter ad = layer.addAdapter("d", LoraConfig.of(2, 2, "x").withInit(LoraConfig.Init.RANDOM).withDropout(0.5), 1);
        INDArray x = Nd4j.randn(DataType.DOUBLE, 4, 50);
        INDArray eval = out(DataType.DOUBLE, 4, 6);
        layer.forward(x, eval);
        assertTrue(maxRelError(eval, reference(x, w, null, ad)) < 1e-12, "no dropout in evaluation");
        layer.setTraining(true);
        layer.setDropoutSeed(5);
        INDArray t1 = out(DataType.DOUBLE, 4, 6);
        layer.forward(x, t1);
        layer.setDropoutSeed(5);
        INDArray t2 = out(DataType.DOUBLE, 4, 6);
        layer.forward(x, t2);
        assertEquals(t1, t2, "same seed, same mask");
        assertTrue(maxRelError(t1, reference(x, w, null, ad)) > 1e-3, "dropout changed the adapter term");
    }
}

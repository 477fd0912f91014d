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

    /** Bit for bit: same shape, same value in every element (ND4J's equals allows 1e-5). */
    private static void assertSameValues(INDArray want, INDArray got, String what) {
        org.junit.jupiter.api.Assertions.assertArrayEquals(want.shape(), got.shape(), what + ": shape");
        org.junit.jupiter.api.Assertions.assertArrayEquals(want.castTo(DataType.DOUBLE).dup('c').data().asDouble(),
                got.castTo(DataType.DOUBLE).dup('c').data().asDouble(), what);
    }

    /** Singular values of m, largest first, computed in double. */
    private static double[] singularValues(INDArray m) {
        INDArray s = Nd4j.create(DataType.DOUBLE, Math.min(m.rows(), m.columns()));
        Nd4j.getBlasWrapper().lapack().gesvd(m.castTo(DataType.DOUBLE).dup('f'), s, null, null);
        return s.data().asDouble();
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
        assertSameValues(y1, y2, "copied with assign vs memcpy");
        assertSameValues(y1, y3, "copied vs the input buffer");
        // A contiguous column block of a wider 'f' matrix, at a non-zero offset: copied with memcpy too.
        INDArray wide = Nd4j.zeros(DataType.FLOAT, 6, 25).dup('f');
        INDArray block = wide.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(10, 20));
        block.assign(x);
        assertTrue(block.offset() > 0);
        INDArray y4 = out(DataType.FLOAT, 6, 12);
        layer.forward(block, y4);
        assertSameValues(y1, y4, "copied from a column block");
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
        assertSameValues(ad.a(), again.addAdapter("default", LoraConfig.of(4, 8, "x"), 11).a(), "A from the same seed");
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
        assertSameValues(w, layer.weight(), "W after a refused merge");
        assertFalse(layer.isMerged());
        ad.b().putScalar(0, 1, Float.POSITIVE_INFINITY);
        assertThrows(IllegalStateException.class, layer::merge);
        assertSameValues(w, layer.weight(), "W after a refused merge");
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
        layer.addAdapter("pissa", config, 0);
        INDArray x = Nd4j.randn(DataType.DOUBLE, 5, 10);
        INDArray y = out(DataType.DOUBLE, 5, 12);
        layer.forward(x, y);
        assertTrue(maxRelError(y, reference(x, w, null, null)) < 1e-10, "output unchanged at step 0");
    }

    /**
     * PiSSA as PEFT's {@code pissa_init} does it (peft/tuners/lora/layer.py, init_lora_weights="pissa"):
     * W = U S Vᵀ, S_r = the top r singular values / scaling, A = diag(sqrt(S_r)) V_rᵀ,
     * B = U_r diag(sqrt(S_r)), W_res = W − scaling · B A. So W_res's singular values are W's with the
     * top r removed (the rest unchanged, r zeros), A's rows and B's columns are orthogonal with
     * squared norms S_r (the singular values split evenly, sqrt each, between A and B), and
     * W_res + scaling · B A gives back W. Tall and wide weights, DOUBLE and FLOAT (the SVD runs in
     * double either way; FLOAT rounds the stored W_res, A and B).
     */
    @Test
    void pissaSplitsTheSpectrumAsPeftDoes() {
        Nd4j.getRandom().setSeed(16);
        for (DataType type : new DataType[]{DataType.DOUBLE, DataType.FLOAT}) {
            double tol = type == DataType.DOUBLE ? 1e-12 : 2e-6;
            for (long[] shape : new long[][]{{12, 10}, {8, 14}}) {
                int r = 3;
                INDArray w = Nd4j.randn(DataType.DOUBLE, shape[0], shape[1]).castTo(type);
                double[] sw = singularValues(w);
                LoraLinear layer = new LoraLinear(w, null);
                LoraConfig config = LoraConfig.of(r, 6, "x").withInit(LoraConfig.Init.PISSA);
                double scaling = config.scaling();
                assertEquals(2.0, scaling);
                LoraAdapter ad = layer.addAdapter("pissa", config, 0);
                String at = type + " " + shape[0] + "x" + shape[1];

                // W_res's spectrum: W's singular values beyond rank r, then r zeros
                double[] sres = singularValues(layer.weight());
                int k = sw.length;
                for (int i = 0; i < k; i++) {
                    double want = i < k - r ? sw[i + r] : 0.0;
                    assertEquals(want, sres[i], tol * sw[0], at + ": singular value " + i + " of W_res");
                }

                // The split: A Aᵀ = B B... = diag(S_r / scaling), off-diagonals 0
                INDArray a = ad.a().castTo(DataType.DOUBLE);
                INDArray b = ad.b().castTo(DataType.DOUBLE);
                INDArray aat = a.mmul(a.transpose());
                INDArray btb = b.transpose().mmul(b);
                for (int i = 0; i < r; i++) {
                    for (int j = 0; j < r; j++) {
                        double want = i == j ? sw[i] / scaling : 0.0;
                        assertEquals(want, aat.getDouble(i, j), tol * sw[0], at + ": (A Aᵀ)[" + i + ", " + j + "]");
                        assertEquals(want, btb.getDouble(i, j), tol * sw[0], at + ": (Bᵀ B)[" + i + ", " + j + "]");
                    }
                }
                // scaling · B A alone is W's best rank-r approximation: its singular values are the top r
                double[] sba = singularValues(b.mmul(a).muli(scaling));
                for (int i = 0; i < r; i++) {
                    assertEquals(sw[i], sba[i], tol * sw[0], at + ": singular value " + i + " of scaling·B·A");
                }

                // W_res + scaling · B A = W
                INDArray back = layer.weight().castTo(DataType.DOUBLE).add(b.mmul(a).muli(scaling));
                double err = maxRelError(back, w.castTo(DataType.DOUBLE));
                System.out.printf("pissa %s: W_res + s·B·A vs W max rel err %.2e%n", at, err);
                // measured 5e-17 (DOUBLE) and 4e-8 (FLOAT: W_res, A and B each rounded to float)
                assertTrue(err < (type == DataType.DOUBLE ? 1e-15 : 2e-7), at + ": reconstruction error " + err);
            }
        }
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
        assertSameValues(t1, t2, "same seed, same mask");
        assertTrue(maxRelError(t1, reference(x, w, null, ad)) > 1e-3, "dropout changed the adapter term");
    }

    /**
     * PEFT's LoRA dropout (peft/tuners/lora/layer.py: {@code lora_B(lora_A(dropout(x))) * scaling},
     * with {@code nn.Dropout(p)}): on the adapter's input only, each element kept with probability
     * 1 − p and then scaled by 1/(1 − p) (inverted dropout), the identity in evaluation mode. With
     * W = 0, A = B = I and scaling 1 the layer's output is dropout(x) itself; x = 1 everywhere.
     * The share kept over 50 draws of 64 x 32 elements must lie within 5 binomial standard
     * deviations of 1 − p; every kept element is exactly 1/(1 − p) (DOUBLE) or its float (FLOAT).
     */
    @Test
    void dropoutKeepsOneMinusPAndScalesByItsInverseAsPeft() {
        for (DataType type : new DataType[]{DataType.DOUBLE, DataType.FLOAT}) {
            for (double p : new double[]{0.1, 0.5, 0.8}) {
                int n = 64;
                int d = 32;
                LoraLinear layer = new LoraLinear(Nd4j.zeros(type, d, d), null);
                INDArray eye = Nd4j.eye(d).castTo(type);
                layer.addAdapter("d", LoraConfig.of(d, d, "x").withDropout(p), eye, eye.dup());
                INDArray x = Nd4j.ones(type, n, d);
                INDArray y = out(type, n, d);
                layer.forward(x, y);
                assertSameValues(x, y, type + " p " + p + ": evaluation mode is the identity");

                layer.setTraining(true);
                layer.setDropoutSeed(17);
                double kept = type == DataType.DOUBLE ? 1.0 / (1.0 - p) : (float) (1.0 / (1.0 - p));
                long keptCount = 0;
                long total = 0;
                int draws = 50;
                double sum = 0;
                java.util.Set<String> masks = new java.util.HashSet<>();
                for (int draw = 0; draw < draws; draw++) {
                    layer.forward(x, y);
                    double[] v = y.castTo(DataType.DOUBLE).data().asDouble();
                    StringBuilder mask = new StringBuilder();
                    for (double e : v) {
                        if (e == 0.0) {
                            mask.append('0');
                        } else {
                            assertEquals(kept, e, Math.ulp(kept), type + " p " + p + ": a kept element is x/(1-p)");
                            keptCount++;
                            mask.append('1');
                        }
                        sum += e;
                        total++;
                    }
                    masks.add(mask.toString());
                }
                double share = (double) keptCount / total;
                double sigma = Math.sqrt(p * (1 - p) / total);
                System.out.printf("dropout %s p=%.1f: kept %.4f (expected %.4f, sigma %.4f), mean output %.4f%n",
                        type, p, share, 1 - p, sigma, sum / total);
                assertEquals(1 - p, share, 5 * sigma, type + " p " + p + ": share of kept elements");
                // inverted dropout keeps the expected value: E[dropout(x)] = x
                assertEquals(1.0, sum / total, 5 * sigma / (1 - p), type + " p " + p + ": mean of dropout(1)");
                assertEquals(draws, masks.size(), "a new mask every forward");

                // The base path is not dropped: with W != 0, y − x Wᵀ is dropout(x) alone.
                layer.setTraining(false);
                LoraLinear withBase = new LoraLinear(Nd4j.randn(DataType.DOUBLE, d, d).castTo(type), null);
                withBase.addAdapter("d", LoraConfig.of(d, d, "x").withDropout(p), eye, eye.dup());
                withBase.setTraining(true);
                withBase.setDropoutSeed(18);
                withBase.forward(x, y);
                INDArray lora = y.castTo(DataType.DOUBLE).sub(x.castTo(DataType.DOUBLE).mmul(withBase.weight().castTo(DataType.DOUBLE).transpose()));
                double tol = type == DataType.DOUBLE ? 1e-12 : 1e-5;
                for (double e : lora.data().asDouble()) {
                    assertTrue(Math.abs(e) < tol || Math.abs(e - kept) < tol * kept,
                            type + " p " + p + ": adapter term " + e + " is neither 0 nor 1/(1-p)");
                }
            }
        }
    }
}

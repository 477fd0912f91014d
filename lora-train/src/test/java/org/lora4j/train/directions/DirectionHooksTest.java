package org.lora4j.train.directions;

import org.junit.jupiter.api.Test;
import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraConfig;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.model.ResidualHook;
import org.lora4j.train.optim.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Steering, ablation (forward, and its gradient), weight-space ablation and the comparisons. */
class DirectionHooksTest {
    static final ModelConfig CONFIG = ModelConfig.llama(40, 16, 24, 3, 4, 2);

    static Directions randomDirections(int width, int layers, long seed) {
        Random r = new Random(seed);
        Map<Integer, double[]> v = new TreeMap<>();
        for (int l = 0; l < layers; l++) {
            double[] x = new double[width];
            for (int i = 0; i < width; i++) {
                x[i] = r.nextGaussian();
            }
            v.put(l, x);
        }
        return new Directions(v, Map.of(), "random " + seed);
    }

    /** Records the stream it sees (forward) and the gradient it is handed (backward); changes neither. */
    static final class Probe implements ResidualHook {
        double[][] hidden;
        double[][] grad;

        @Override
        public void forward(int layer, INDArray h, boolean[] mask) {
            hidden = h.toDoubleMatrix();
        }

        @Override
        public void backward(int layer, INDArray dh) {
            grad = dh.toDoubleMatrix();
        }
    }

    static double[] unit(double[] v) {
        double n = Directions.norm(v);
        double[] u = v.clone();
        for (int i = 0; i < u.length; i++) {
            u[i] /= n;
        }
        return u;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    @Test
    void ablationLeavesNoComponentAlongTheDirection() {
        DecoderModel m = DecoderModel.randomInit(CONFIG, 2);
        Directions d = randomDirections(16, 3, 4);
        Probe[] before = new Probe[3];
        Probe[] after = new Probe[3];
        for (int l = 0; l < 3; l++) {
            m.addResidualHook(l, before[l] = new Probe());
        }
        DirectionHooks.Installed ablation = DirectionHooks.ablate(m, d, LayerSelection.parse("all"));
        for (int l = 0; l < 3; l++) {
            m.addResidualHook(l, after[l] = new Probe());
        }
        int[] tokens = {1, 5, 9, 2, 33, 7, 0, 12};
        m.forward(tokens, null, 1, tokens.length);
        for (int l = 0; l < 3; l++) {
            double[] r = unit(d.vector(l));
            double had = 0;
            double norms = 0;
            for (int t = 0; t < tokens.length; t++) {
                double scale = Directions.norm(before[l].hidden[t]);
                had += Math.abs(dot(before[l].hidden[t], r));
                norms += scale;
                assertEquals(0, dot(after[l].hidden[t], r), 1e-6 * scale, "layer " + l + " token " + t);
            }
            assertTrue(had > 0.05 * norms, "the stream had a component to remove at layer " + l);
        }
        ablation.remove(m);
        m.forward(tokens, null, 1, tokens.length);
        double[] r0 = unit(d.vector(0));
        double had = 0;
        double norms = 0;
        for (double[] h : after[0].hidden) {
            had += Math.abs(dot(h, r0));
            norms += Directions.norm(h);
        }
        assertTrue(had > 0.05 * norms, "the ablation was taken off");
    }

    /** One layer's direction at every layer (the paper's form): every layer's stream loses that one component. */
    @Test
    void oneLayersDirectionEverywhere() {
        DecoderModel m = DecoderModel.randomInit(CONFIG, 2);
        Directions d = new Directions(Map.of(1, randomDirections(16, 1, 6).vector(0)), Map.of(), "only layer 1");
        assertThrows(IllegalArgumentException.class, () -> DirectionHooks.ablate(m, d, LayerSelection.parse("all")),
                "layers 0 and 2 have no direction of their own");
        DirectionHooks.ablate(m, d, LayerSelection.parse("0,2@1"));
        Probe p0 = new Probe();
        Probe p2 = new Probe();
        m.addResidualHook(0, p0);
        m.addResidualHook(2, p2);
        int[] tokens = {3, 4, 5, 6};
        m.forward(tokens, null, 1, 4);
        double[] r = unit(d.vector(1));
        for (int t = 0; t < 4; t++) {
            assertEquals(0, dot(p0.hidden[t], r), 1e-6 * Directions.norm(p0.hidden[t]));
            assertEquals(0, dot(p2.hidden[t], r), 1e-6 * Directions.norm(p2.hidden[t]));
        }
    }

    static DecoderModel doubleModel(long seed) {
        DecoderModel m = DecoderModel.randomInit(CONFIG, seed, DataType.DOUBLE);
        Random r = new Random(seed);
        // Larger than the 0.02 init, so every path carries signal (as DecoderModelGradientTest does).
        m.parameters().forEach((name, p) -> {
            double[] v = new double[(int) p.length()];
            for (int i = 0; i < v.length; i++) {
                v[i] = name.endsWith("norm.weight") ? 1 + 0.3 * r.nextGaussian() : 0.4 * r.nextGaussian();
            }
            p.assign(Nd4j.create(v, p.shape(), DataType.DOUBLE));
        });
        return m;
    }

    /**
     * The gradient through the ablation is the projected gradient, (I − r rᵀ) g, and the model's
     * loss with ablation hooks passes a central-difference check (double, eps 1e-6).
     */
    @Test
    void ablationGradientIsTheProjectedGradient() {
        DecoderModel m = doubleModel(21);
        m.setFullFinetune(true);
        Directions d = randomDirections(16, 3, 22);
        Probe in = new Probe();
        m.addResidualHook(1, in);
        DirectionHooks.ablate(m, d, LayerSelection.parse("1,2@1"));
        Probe out = new Probe();
        m.addResidualHook(1, out);
        int[] tokens = {1, 5, 9, 2, 33, 7, 0, 12, 3, 3};
        boolean[] mask = {true, true, true, false, true, true, false, true, true, true};
        m.zeroGrad();
        m.lossAndBackward(tokens, mask, 2, 5);
        double[] r = unit(d.vector(1));
        double had = 0;
        double norms = 0;
        for (int t = 0; t < tokens.length; t++) {
            double[] g = out.grad[t];
            double along = dot(g, r);
            had += Math.abs(along);
            norms += Directions.norm(g);
            double[] want = g.clone();
            for (int c = 0; c < want.length; c++) {
                want[c] -= along * r[c];
            }
            assertArrayEquals(want, in.grad[t], 1e-12, "row " + t);
            assertEquals(0, dot(in.grad[t], r), 1e-12, "row " + t);
        }
        assertTrue(had > 0.05 * norms, "the gradient had a component along r to remove");
        // Central differences of the whole loss with the hooks in, a few entries of every tensor.
        Random pick = new Random(3);
        double worst = 0;
        for (Parameter p : m.trainableParameters()) {
            INDArray v = p.value();
            for (int s = 0; s < 3; s++) {
                long[] at = unravel(pick.nextInt((int) v.length()), v.shape());
                double old = v.getDouble(at);
                v.putScalar(at, old + 1e-6);
                double up = m.loss(tokens, mask, 2, 5);
                v.putScalar(at, old - 1e-6);
                double down = m.loss(tokens, mask, 2, 5);
                v.putScalar(at, old);
                double num = (up - down) / 2e-6;
                double ana = p.grad().getDouble(at);
                worst = Math.max(worst, Math.abs(num - ana) / Math.max(Math.abs(num) + Math.abs(ana), 1e-4));
            }
        }
        System.out.printf("gradcheck with ablation at layers 1,2 (layer 1's direction): worst rel err %.2e%n", worst);
        assertTrue(worst < 1e-5, "worst " + worst);
    }

    @Test
    void steeringChangesGreedyGeneration() {
        DecoderModel m = DecoderModel.randomInit(CONFIG, 12);
        Directions d = randomDirections(16, 3, 13);
        int[] prompt = {4, 8, 15, 16, 23};
        int[] plain = m.generate(prompt, 12, null, DecoderModel.greedy(), true);
        DirectionHooks.Installed steer = DirectionHooks.steer(m, d, 1, 8);
        int[] steered = m.generate(prompt, 12, null, DecoderModel.greedy(), true);
        assertFalse(Arrays.equals(plain, steered), "steering should change the continuation: " + Arrays.toString(plain));
        // The same vector with lambda 0 is no change, and taking the hook off restores the model.
        steer.remove(m);
        DirectionHooks.Installed zero = DirectionHooks.steer(m, d, 1, 0);
        assertArrayEquals(plain, m.generate(prompt, 12, null, DecoderModel.greedy(), true));
        zero.remove(m);
        // The random control steers too, but elsewhere.
        DirectionHooks.steer(m, d.randomControl(5), 1, 8);
        int[] control = m.generate(prompt, 12, null, DecoderModel.greedy(), true);
        assertFalse(Arrays.equals(steered, control), "the control is another direction");
        assertEquals("layer 3 is out of range: the model has 3 layers (0..2)", assertThrows(IllegalArgumentException.class,
                () -> DirectionHooks.steer(m, d, 3, 1)).getMessage());
        Directions wide = randomDirections(8, 1, 1);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DirectionHooks.steer(m, wide, 0, 1)).getMessage()
                .contains("directions have 8 elements but the model's hidden_size is 16"));
    }

    @Test
    void weightSpaceAblationLeavesBOrthogonalWithItsNorm() {
        DecoderModel m = DecoderModel.randomInit(CONFIG, 30);
        PeftModel peft = new PeftModel(m);
        peft.addAdapter("default", LoraConfig.of(2, 4, "o_proj", "down_proj", "q_proj").withInit(LoraConfig.Init.RANDOM), 31);
        Map<String, LoraAdapter> adapters = peft.activeAdapters();
        Map<String, double[][]> before = new TreeMap<>();
        adapters.forEach((k, a) -> before.put(k, a.b().toDoubleMatrix()));
        Directions d = randomDirections(16, 3, 32);
        List<String> changed = DirectionHooks.ablateAdapterB(m, d, LayerSelection.parse("1,2"));
        assertEquals(List.of("model.layers.1.self_attn.o_proj", "model.layers.1.mlp.down_proj",
                "model.layers.2.self_attn.o_proj", "model.layers.2.mlp.down_proj"), changed);
        for (Map.Entry<String, LoraAdapter> e : adapters.entrySet()) {
            double[][] b = e.getValue().b().toDoubleMatrix();
            if (changed.contains(e.getKey())) {
                double[] r = unit(d.vector(DirectionHooks.layerOf(e.getKey())));
                for (int j = 0; j < b[0].length; j++) {
                    double[] col = new double[16];
                    for (int i = 0; i < 16; i++) {
                        col[i] = b[i][j];
                    }
                    assertEquals(0, dot(col, r), 1e-6 * frob(b), e.getKey() + " column " + j);
                }
                assertEquals(frob(before.get(e.getKey())), frob(b), 1e-5 * frob(b), e.getKey() + " keeps its norm");
            } else {
                assertTrue(Arrays.deepEquals(before.get(e.getKey()), b), e.getKey() + " untouched");
            }
        }
        // The comparison of attached adapters sees the same: every edited column is orthogonal to its layer's direction.
        List<DirectionComparison.AdapterCosine> cos = DirectionComparison.adapterColumnsOf(
                new Directions(Map.of(1, d.vector(1), 2, d.vector(2)), Map.of(), "layers 1 and 2"), adapters);
        assertEquals(8, cos.size(), "o_proj and down_proj at layers 1 and 2, rank 2");
        for (DirectionComparison.AdapterCosine c : cos) {
            assertEquals(0, c.cosine(), 1e-6, c.module());
        }
        IllegalArgumentException err;
        DecoderModel q = DecoderModel.randomInit(CONFIG, 30);
        new PeftModel(q).addAdapter("default", LoraConfig.of(1, 1, "q_proj", "v_proj"), 1);
        err = assertThrows(IllegalArgumentException.class, () -> DirectionHooks.ablateAdapterB(q, d, LayerSelection.parse("all")));
        assertTrue(err.getMessage().startsWith("no adapter writes the residual stream at layer(s) all: weight-space ablation"
                + " edits the B of adapters on o_proj or down_proj, and the model's adapters are on [model.layers.0.self_attn.q_proj"),
                err.getMessage());
        DecoderModel none = DecoderModel.randomInit(CONFIG, 30);
        err = assertThrows(IllegalArgumentException.class, () -> DirectionHooks.ablateAdapterB(none, d, LayerSelection.parse("1")));
        assertTrue(err.getMessage().endsWith("on no module (load one with --adapter)"), err.getMessage());
        peft.mergeAdapter();
        err = assertThrows(IllegalArgumentException.class, () -> DirectionHooks.ablateAdapterB(m, d, LayerSelection.parse("1")));
        assertTrue(err.getMessage().contains("is merged into the weights"), err.getMessage());
    }

    static long[] unravel(long idx, long[] shape) {
        long[] at = new long[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            at[i] = idx % shape[i];
            idx /= shape[i];
        }
        return at;
    }

    static double frob(double[][] b) {
        double s = 0;
        for (double[] row : b) {
            for (double x : row) {
                s += x * x;
            }
        }
        return Math.sqrt(s);
    }

    @Test
    void zeroDirectionIsRefusedForAblation() {
        DecoderModel m = DecoderModel.randomInit(CONFIG, 2);
        Directions z = new Directions(Map.of(0, new double[16]), Map.of(), "zeros.safetensors");
        assertEquals("zeros.safetensors: the direction of layer 0 is zero, so it has no unit vector to ablate",
                assertThrows(IllegalArgumentException.class, () -> DirectionHooks.ablate(m, z, LayerSelection.parse("0")))
                        .getMessage());
    }

    @Test
    void comparisonCosines() {
        Directions a = randomDirections(16, 3, 40);
        Map<Integer, double[]> neg = new TreeMap<>();
        for (int l : a.layers()) {
            double[] v = a.vector(l);
            for (int i = 0; i < v.length; i++) {
                v[i] *= l == 1 ? -2.5 : 3;
            }
            neg.put(l, v);
        }
        Directions b = new Directions(neg, Map.of(), "b");
        List<DirectionComparison.LayerCosine> c = DirectionComparison.layers(a, b);
        assertEquals(1, c.get(0).cosine(), 1e-12);
        assertEquals(-1, c.get(1).cosine(), 1e-12);
        assertEquals(1, c.get(1).absCosine(), 1e-12);
        double cross = DirectionComparison.layers(a, randomDirections(16, 3, 41)).get(2).cosine();
        assertTrue(Math.abs(cross) < 0.9, "independent random vectors: " + cross);
        Directions two = new Directions(Map.of(0, a.vector(0), 2, a.vector(2)), Map.of(), "two");
        assertEquals("random 40 holds layers [0, 1, 2] but two holds [0, 2]; compare files made with the same --layers",
                assertThrows(IllegalArgumentException.class, () -> DirectionComparison.layers(a, two)).getMessage());
        assertEquals("random 40 has width 16 but random 1 has 8: directions of different models cannot be compared",
                assertThrows(IllegalArgumentException.class,
                        () -> DirectionComparison.layers(a, randomDirections(8, 3, 1))).getMessage());

        // B columns: one built along v_1 (cos 1), one orthogonal to it (cos 0).
        double[] v1 = a.vector(1);
        double[] other = a.vector(2);
        double[] r = unit(v1);
        double along = dot(other, r);
        double[][] b2 = new double[16][2];
        for (int i = 0; i < 16; i++) {
            b2[i][0] = 2 * v1[i];
            b2[i][1] = other[i] - along * r[i];
        }
        List<DirectionComparison.AdapterCosine> ac = DirectionComparison.adapterColumns(a, Map.of(
                "model.layers.1.mlp.down_proj", Nd4j.create(b2), "model.layers.1.self_attn.q_proj", Nd4j.create(b2)));
        assertEquals(2, ac.size(), "q_proj does not write the residual stream");
        assertEquals(1, ac.get(0).cosine(), 1e-12);
        assertEquals(0, ac.get(1).cosine(), 1e-12);
        assertEquals(1, ac.get(1).column());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DirectionComparison.adapterColumns(two,
                Map.of("model.layers.1.mlp.down_proj", Nd4j.create(b2)))).getMessage().startsWith(
                "no adapter B writes the residual stream at a layer of two (layers [0, 2])"));
    }
}

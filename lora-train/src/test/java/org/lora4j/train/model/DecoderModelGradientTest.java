package org.lora4j.train.model;

import org.junit.jupiter.api.Test;
import org.lora4j.core.LoraConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole-model central-difference checks in double precision: every trainable tensor (a few random
 * entries each) of a tiny Llama (untied, GQA) and a tiny Qwen2 (tied, q/k/v bias, GQA), in full
 * fine-tuning and with adapters, with residual hooks in the stream.
 */
class DecoderModelGradientTest {
    static final double EPS = 1e-6;
    static final int BATCH = 2;
    static final int SEQ = 5;

    static DecoderModel tiny(ModelConfig config, long seed) {
        DecoderModel m = DecoderModel.randomInit(config, seed, DataType.DOUBLE);
        Random r = new Random(seed);
        // Larger than the 0.02 init, so every path carries signal; biases and norms non-trivial.
        m.parameters().forEach((name, p) -> {
            double[] v = new double[(int) p.length()];
            for (int i = 0; i < v.length; i++) {
                v[i] = name.endsWith("norm.weight") ? 1 + 0.3 * r.nextGaussian() : 0.4 * r.nextGaussian();
            }
            p.assign(Nd4j.create(v, p.shape(), DataType.DOUBLE));
        });
        return m;
    }

    static int[] tokens(int vocab, long seed) {
        Random r = new Random(seed);
        int[] t = new int[BATCH * SEQ];
        for (int i = 0; i < t.length; i++) {
            t[i] = r.nextInt(vocab);
        }
        return t;
    }

    static final boolean[] MASK = {true, true, false, true, true, false, true, true, true, false};

    /**
     * Relative error with an absolute floor of 1e-4 on the denominator: some gradients are zero up to
     * rounding (a key bias shifts every score of a query by the same amount, which softmax ignores
     * except through RoPE), and central differences cannot resolve those below ~1e-9.
     * Checks up to {@code perTensor} random entries of every trainable tensor; returns the worst error.
     */
    static double check(DecoderModel m, int[] tokens, int perTensor, String label) {
        return check(m, tokens, MASK, BATCH, SEQ, EPS, perTensor, label);
    }

    /** As above for any batch, sequence length, mask and step eps. */
    static double check(DecoderModel m, int[] tokens, boolean[] mask, int batch, int seq, double eps, int perTensor,
                        String label) {
        m.zeroGrad();
        m.lossAndBackward(tokens, mask, batch, seq);
        Random r = new Random(3);
        double worst = 0;
        String worstName = "";
        List<org.lora4j.train.optim.Parameter> params = m.trainableParameters();
        assertTrue(!params.isEmpty(), "nothing trainable");
        for (org.lora4j.train.optim.Parameter p : params) {
            INDArray flatV = p.value();
            INDArray g = p.grad();
            assertTrue(g != null, p.name() + " has no gradient");
            long len = flatV.length();
            for (int s = 0; s < Math.min(perTensor, len); s++) {
                long idx = r.nextInt((int) len);
                long[] at = unravel(idx, flatV.shape());
                double old = flatV.getDouble(at);
                flatV.putScalar(at, old + eps);
                double up = m.loss(tokens, mask, batch, seq);
                flatV.putScalar(at, old - eps);
                double down = m.loss(tokens, mask, batch, seq);
                flatV.putScalar(at, old);
                double num = (up - down) / (2 * eps);
                double ana = g.getDouble(at);
                double err = Math.abs(num - ana) / Math.max(Math.abs(num) + Math.abs(ana), 1e-4);
                if (err > worst) {
                    worst = err;
                    worstName = p.name() + Arrays.toString(at) + " num " + num + " ana " + ana;
                }
            }
        }
        System.out.printf("gradcheck model %s: %d tensors, worst rel err %.2e (%s)%n", label, params.size(), worst, worstName);
        assertTrue(worst < 1e-5, label + ": " + worstName + " rel err " + worst);
        return worst;
    }

    private static long[] unravel(long idx, long[] shape) {
        long[] at = new long[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            at[i] = idx % shape[i];
            idx /= shape[i];
        }
        return at;
    }

    @Test
    void llamaUntiedFullFinetuneWithSteeringHook() {
        ModelConfig c = ModelConfig.llama(11, 8, 12, 2, 4, 2).withRope(10000, null);
        DecoderModel m = tiny(c, 1);
        m.setFullFinetune(true);
        m.addResidualHook(0, new ResidualHook.AddVector(Nd4j.createFromArray(-1.0, -0.7, -0.4, -0.1, 0.2, 0.5, 0.8, 1.1), 0.5));
        check(m, tokens(11, 2), 6, "llama full");
    }

    @Test
    void qwen2TiedFullFinetuneWithAblationHook() {
        ModelConfig c = ModelConfig.qwen2(13, 8, 12, 2, 2, 1).withTiedEmbeddings(true);
        DecoderModel m = tiny(c, 4);
        m.setFullFinetune(true);
        m.addResidualHook(1, new ResidualHook.ProjectOut(Nd4j.createFromArray(1.0, 2, 3, 4, 5, 6, 7, 8)));
        check(m, tokens(13, 5), 6, "qwen2 tied full");
    }

    /**
     * Sequence 150, so attention runs over three 64-tiles (the whole-model checks above stay inside
     * one): a Llama with GQA in full fine-tuning plus adapters on q_proj and v_proj, every
     * trainable tensor. eps 1e-5, measured on the worst entry here: at eps 1e-4 the central
     * difference's truncation error showed (2.4e-6 relative, falling 100-fold per 10-fold smaller
     * eps, so the analytic gradient is right), at 1e-6 the loss's rounding (about 1e-6); at 1e-5
     * the worst over all tensors was 7.5e-8.
     */
    @Test
    void llamaAtSequence150WithAdaptersAndFullFinetune() {
        int seq = 150;
        ModelConfig c = ModelConfig.llama(11, 8, 12, 2, 4, 2).withRope(10000, null).withMaxPositionEmbeddings(256);
        DecoderModel m = tiny(c, 12);
        new PeftModel(m).addAdapter("default", LoraConfig.of(2, 4, "q_proj", "v_proj").withInit(LoraConfig.Init.RANDOM), 13);
        m.setFullFinetune(true);
        Random r = new Random(14);
        int[] tokens = new int[seq];
        boolean[] mask = new boolean[seq];
        for (int i = 0; i < seq; i++) {
            tokens[i] = r.nextInt(11);
            mask[i] = r.nextInt(4) != 0;
        }
        check(m, tokens, mask, 1, seq, 1e-5, 3, "llama seq 150");
    }

    @Test
    void adaptersOnASubsetOfLayers() {
        ModelConfig c = ModelConfig.qwen2(13, 8, 12, 3, 4, 2);
        DecoderModel m = tiny(c, 6);
        // B non-zero (RANDOM init), or the check of A would pass vacuously
        LoraConfig lc = LoraConfig.of(2, 4, "down_proj", "q_proj", "v_proj").withInit(LoraConfig.Init.RANDOM)
                .withLayersToTransform(List.of(1));
        List<String> adapted = new PeftModel(m).addAdapter("default", lc, 9);
        assertTrue(adapted.equals(List.of("model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj",
                "model.layers.1.mlp.down_proj")), adapted.toString());
        assertTrue(m.trainableParameters().size() == 6);
        check(m, tokens(13, 8), 8, "adapters layer 1");
        // Frozen parts hold no gradient memory.
        assertTrue(m.linearLayers().get("model.layers.0.mlp.down_proj").weightGrad() == null);
    }

    /**
     * One adapter on one part of a middle layer: the backward stops at that part (no attention
     * backward below down_proj, no q/k/v input gradient below k_proj), and the gradients still match.
     */
    @Test
    void backwardStopsAtTheLowestTrainablePart() {
        for (String target : List.of("down_proj", "up_proj", "gate_proj", "o_proj", "k_proj", "v_proj")) {
            ModelConfig c = ModelConfig.qwen2(13, 8, 12, 3, 4, 2);
            DecoderModel m = tiny(c, 6);
            LoraConfig lc = LoraConfig.of(1, 4, target).withInit(LoraConfig.Init.RANDOM).withRslora(true)
                    .withLayersToTransform(List.of(1));
            new PeftModel(m).addAdapter("default", lc, 9);
            assertTrue(m.trainableParameters().size() == 2);
            check(m, tokens(13, 8), 8, "rank 1 on layer 1 " + target);
        }
    }

    /** Blocks below the lowest trainable one save nothing in the loss, so a backward that would need them is refused. */
    @Test
    void aLayerMadeTrainableAfterTheLossIsRefused() {
        DecoderModel m = tiny(ModelConfig.qwen2(13, 8, 12, 3, 4, 2), 6);
        new PeftModel(m).addAdapter("default", LoraConfig.of(1, 4, "down_proj").withLayersToTransform(List.of(2)), 9);
        m.loss(tokens(13, 8), MASK, BATCH, SEQ);
        m.linearLayers().get("model.layers.0.mlp.up_proj").addAdapter("late", LoraConfig.of(1, 4, "up_proj"), 3);
        IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> m.backward(1.0));
        assertTrue(e.getMessage().contains("layer 0 became trainable after the loss"), e.getMessage());
    }
}

package org.lora4j.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.Random;

/**
 * Times forward and forward+backward per token of the docs/model-performance.md model (d_model 256,
 * 4 layers, 8 heads, 4 KV heads, d_ff 688, vocab 256, batch 8 x seq 128), full-parameter and
 * frozen-base (LoRA r = 8 on every linear layer) backward. Median of 10 after 3 warm-up steps.
 *
 * <p>Run with {@code OMP_WAIT_POLICY=PASSIVE} in the environment (docs/model-performance.md).
 */
public final class ModelSpeed {
    private ModelSpeed() {
    }

    public static void main(String[] args) {
        int batch = 8;
        int seq = 128;
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        ModelConfig c = ModelConfig.llama(256, 256, 688, 4, 8, 4);
        int[] tokens = new int[batch * seq];
        Random r = new Random(0);
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(256);
        }
        DecoderModel full = DecoderModel.randomInit(c, 1);
        full.setFullFinetune(true);
        double fwd = median(reps, () -> {
            INDArray l = full.forward(tokens, null, batch, seq);
            l.getFloat(0);
        });
        double fb = median(reps, () -> full.lossAndBackward(tokens, null, batch, seq));
        DecoderModel lora = DecoderModel.randomInit(c, 1);
        new PeftModel(lora).addAdapter("default", org.lora4j.core.LoraConfig.of(8, 16, "q_proj", "k_proj", "v_proj", "o_proj",
                "gate_proj", "up_proj", "down_proj"), 2);
        double fbLora = median(reps, () -> lora.lossAndBackward(tokens, null, batch, seq));
        int n = batch * seq;
        System.out.printf("java forward: %.1f ms/step, %.1f us/token%n", fwd, fwd * 1000 / n);
        System.out.printf("java forward+backward full: %.1f ms/step, %.1f us/token%n", fb, fb * 1000 / n);
        System.out.printf("java forward+backward lora r8: %.1f ms/step, %.1f us/token%n", fbLora, fbLora * 1000 / n);
    }

    private static double median(int reps, Runnable step) {
        for (int i = 0; i < 3; i++) {
            step.run();
        }
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            step.run();
            t[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(t);
        return t[reps / 2];
    }
}

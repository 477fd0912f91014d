package org.lora4j.train.optim;

import org.lora4j.core.LoraConfig;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.model.ModelConfig;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Times the optimizer (clip + AdamW step + zero gradients) on the parameters of the d 512, 8-layer
 * model of docs/performance.md, full and LoRA r = 8 on every linear layer, and a whole training
 * step (forward, backward, clip, step, zero) of the d 256, 4-layer model. Median of {@code reps}
 * after 3 warm-up runs. Arguments: {@code [reps] [step-only]}. Run it once with {@code OMP_WAIT_POLICY=PASSIVE} and once without to see
 * what the wait policy costs.
 */
public final class OptimizerSpeed {
    private OptimizerSpeed() {
    }

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        System.out.printf(Locale.ROOT, "# OMP_WAIT_POLICY=%s, %d cores%n", System.getenv("OMP_WAIT_POLICY"),
                Runtime.getRuntime().availableProcessors());
        if (args.length < 2 || !args[1].equals("step-only")) {
            optimizerAlone(reps);
        }
        trainingStep(reps);
    }

    private static void optimizerAlone(int reps) {
        ModelConfig d512 = ModelConfig.llama(256, 512, 1376, 8, 8, 4);
        DecoderModel full = DecoderModel.randomInit(d512, 1);
        full.setFullFinetune(true);
        report("optimizer d512 full", full.trainableParameters(), reps);
        DecoderModel lora = DecoderModel.randomInit(d512, 1);
        new PeftModel(lora).addAdapter("default", LoraConfig.of(8, 16, "q_proj", "k_proj", "v_proj", "o_proj",
                "gate_proj", "up_proj", "down_proj"), 2);
        report("optimizer d512 lora r8", lora.trainableParameters(), reps);
    }

    private static void trainingStep(int reps) {
        int batch = 8;
        int seq = 128;
        int[] tokens = new int[batch * seq];
        Random r = new Random(0);
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(256);
        }
        DecoderModel small = DecoderModel.randomInit(ModelConfig.llama(256, 256, 688, 4, 8, 4), 1);
        small.setFullFinetune(true);
        Optimizer opt = Optimizer.adamw(small.trainableParameters(), 0.01);
        double ms = median(reps, () -> {
            opt.zeroGrad();
            small.lossAndBackward(tokens, null, batch, seq);
            opt.clipGradNorm(1.0);
            opt.step(1e-4);
        });
        System.out.printf(Locale.ROOT, "train step d256 full B8 T128: %.1f ms, %.0f tokens/s%n", ms,
                batch * seq * 1000.0 / ms);
    }

    private static void report(String what, List<Parameter> params, int reps) {
        long n = params.stream().mapToLong(p -> p.value().length()).sum();
        Optimizer opt = Optimizer.adamw(params, 0.01);
        for (Parameter p : params) {
            p.grad().assign(1e-3);
        }
        double clip = median(reps, () -> opt.clipGradNorm(1.0));
        double step = median(reps, () -> opt.step(1e-4));
        double zero = median(reps, opt::zeroGrad);
        System.out.printf(Locale.ROOT, "%s: %d tensors, %d values: clip %.2f ms, step %.2f ms, zero %.2f ms%n",
                what, params.size(), n, clip, step, zero);
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

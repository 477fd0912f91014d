package org.lora4j.train.model;

import org.lora4j.train.text.Sampler;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Samples per second of {@link Generator} at batch 1, 8, 32 and 64 on the docs/model-performance.md
 * model (d_model 256, 4 layers, 8 heads, 4 KV heads, d_ff 688, vocab 256, FLOAT): prompts of 16 to
 * 24 tokens, 32 new tokens each, one seeded sampler per sequence, no stop tokens. Median of 5 runs
 * after 2 warm-up runs per batch size.
 *
 * <p>Run with {@code OMP_WAIT_POLICY=PASSIVE} in the environment (docs/model-performance.md);
 * arguments: the batch sizes (default 1 8 32 64).
 */
public final class GenerationSpeed {
    static final int NEW_TOKENS = 32;

    private GenerationSpeed() {
    }

    public static void main(String[] args) {
        int[] batches = args.length > 0 ? Arrays.stream(args).mapToInt(Integer::parseInt).toArray()
                : new int[]{1, 8, 32, 64};
        ModelConfig c = ModelConfig.llama(256, 256, 688, 4, 8, 4);
        DecoderModel m = DecoderModel.randomInit(c, 1);
        Generator g = new Generator(m);
        double base = 0;
        for (int b : batches) {
            double ms = median(5, () -> g.generate(requests(b)));
            double perSecond = b * 1000.0 / ms;
            if (base == 0) {
                base = perSecond;
            }
            System.out.printf("batch %d: %.1f ms, %.1f samples/s, %.2fx batch %d%n", b, ms, perSecond,
                    perSecond / base, batches[0]);
        }
    }

    static List<Generator.Request> requests(int batch) {
        Random r = new Random(batch);
        List<Generator.Request> reqs = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            int[] prompt = r.ints(16 + r.nextInt(9), 0, 256).toArray();
            reqs.add(new Generator.Request(prompt, NEW_TOKENS, null, new Sampler(1.0, 0.9, i)::next));
        }
        return reqs;
    }

    private static double median(int reps, Runnable run) {
        for (int i = 0; i < 2; i++) {
            run.run();
        }
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            run.run();
            t[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(t);
        return t[reps / 2];
    }
}

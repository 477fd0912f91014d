package org.lora4j.train.model;

import org.lora4j.train.text.Sampler;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Samples per second of {@link Generator} at batch 1, 8, 32 and 64 on the docs/model-performance.md
 * model (d_model 256, 4 layers, 8 heads, 4 KV heads, d_ff 688, vocab 256, FLOAT): prompts of 16 to
 * 24 tokens, 32 new tokens each, one seeded sampler per sequence, no stop tokens. With
 * {@code -Dmixed=true} each sequence's limit is drawn from 16..48 instead (32 on average), so
 * sequences leave the batch at different steps.
 *
 * <p>After two warm-up rounds, ROUNDS rounds each run every batch size once, so load from other
 * processes falls on all sizes alike; prints per size the fastest and the median round, in wall
 * time and in process CPU time (all threads, native ones included), and the ratios to the first size.
 *
 * <p>Run with {@code OMP_WAIT_POLICY=PASSIVE} in the environment (docs/model-performance.md);
 * arguments: the rounds, then the batch sizes (default 7 1 8 32 64).
 */
public final class GenerationSpeed {
    static final int NEW_TOKENS = 32;
    static final boolean MIXED = Boolean.getBoolean("mixed");

    private GenerationSpeed() {
    }

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        int[] batches = args.length > 1 ? Arrays.stream(args, 1, args.length).mapToInt(Integer::parseInt).toArray()
                : new int[]{1, 8, 32, 64};
        ModelConfig c = ModelConfig.llama(256, 256, 688, 4, 8, 4);
        Generator g = new Generator(DecoderModel.randomInit(c, 1));
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        double[][] wall = new double[batches.length][rounds];
        double[][] cpu = new double[batches.length][rounds];
        for (int round = -2; round < rounds; round++) {
            for (int i = 0; i < batches.length; i++) {
                List<Generator.Request> reqs = requests(batches[i]);
                long c0 = os.getProcessCpuTime();
                long t0 = System.nanoTime();
                List<int[]> out = g.generate(reqs);
                long t1 = System.nanoTime();
                long c1 = os.getProcessCpuTime();
                for (int k = 0; k < out.size(); k++) {
                    if (out.get(k).length != reqs.get(k).maxNewTokens()) {
                        throw new IllegalStateException("sequence " + k + " ended early");
                    }
                }
                if (round >= 0) {
                    wall[i][round] = (t1 - t0) / 1e6;
                    cpu[i][round] = (c1 - c0) / 1e6;
                }
            }
        }
        System.out.printf("%d rounds, %s new tokens per sequence, %d cores%n", rounds,
                MIXED ? "16..48" : String.valueOf(NEW_TOKENS), Runtime.getRuntime().availableProcessors());
        for (int i = 0; i < batches.length; i++) {
            int b = batches[i];
            System.out.printf("batch %2d: wall min %7.1f ms (%6.1f samples/s, %5.2fx), median %7.1f ms (%5.2fx);"
                            + " cpu min %7.1f ms (%5.2fx)%n", b,
                    min(wall[i]), b * 1000 / min(wall[i]), ratio(wall, i, 0, batches, true),
                    median(wall[i]), ratio(wall, i, 0, batches, false),
                    min(cpu[i]), ratio(cpu, i, 0, batches, true));
        }
    }

    /** Samples per second of size i over those of size j, from the fastest or the median round. */
    private static double ratio(double[][] ms, int i, int j, int[] batches, boolean fastest) {
        double ti = fastest ? min(ms[i]) : median(ms[i]);
        double tj = fastest ? min(ms[j]) : median(ms[j]);
        return (batches[i] / ti) / (batches[j] / tj);
    }

    static List<Generator.Request> requests(int batch) {
        Random r = new Random(batch);
        List<Generator.Request> reqs = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            int[] prompt = r.ints(16 + r.nextInt(9), 0, 256).toArray();
            int limit = MIXED ? 16 + r.nextInt(33) : NEW_TOKENS;
            reqs.add(new Generator.Request(prompt, limit, null, new Sampler(1.0, 0.9, i)::next));
        }
        return reqs;
    }

    private static double min(double[] a) {
        return Arrays.stream(a).min().orElseThrow();
    }

    private static double median(double[] a) {
        double[] s = a.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}

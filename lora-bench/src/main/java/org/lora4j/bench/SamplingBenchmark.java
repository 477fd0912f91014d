package org.lora4j.bench;

import org.lora4j.train.eval.SampledGeneration;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.Message;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Samples per second of the sampled evaluation's generation ({@link SampledGeneration}) at several
 * batch sizes, on a random Llama-style model (d_model 256, 4 layers, 8 heads, 4 KV heads, d_ff 688,
 * the byte tokenizer's 259 tokens: the training benchmark's 256 size), 8 chat-template questions,
 * temperature 1, top-p 1, no stop token, so every sample runs to {@code --max-new-tokens} and each
 * batch size does the same number of tokens per sample (a random model picks an end token now and
 * then, which would make the sample lengths differ by chance).
 *
 * <p>Prints one JSON line per batch size (wall and process CPU time), then a summary line with the time the full evaluation
 * (questions x samples) takes at the largest batch against that many single samples. Batch 1 times
 * {@code --samples-at-1} samples of the first question only (its rate does not change with their number; the whole
 * evaluation at batch 1 is what the summary extrapolates). Before timing, the first samples of the
 * largest batch are checked equal, token for token, to the same samples drawn one at a time.
 *
 * <p>A plain main, like {@link TrainingBenchmark}: one run of a batch takes seconds. Run with
 * {@code OMP_WAIT_POLICY=PASSIVE}: {@code java -cp lora-bench/target/benchmarks.jar
 * org.lora4j.bench.SamplingBenchmark [--batch-sizes 1,16,64] [--questions 8] [--samples 50]
 * [--samples-at-1 16] [--max-new-tokens 64] [--seed 0]}.
 */
public final class SamplingBenchmark {
    private SamplingBenchmark() {
    }

    public static void main(String[] args) {
        int[] batchSizes = {1, 16, 64};
        int questions = 8;
        int samples = 50;
        int samplesAtOne = 16;
        int maxNew = 64;
        long seed = 0;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(a + " needs a value");
            }
            switch (a) {
                case "--batch-sizes" -> batchSizes = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                case "--questions" -> questions = Integer.parseInt(args[++i]);
                case "--samples" -> samples = Integer.parseInt(args[++i]);
                case "--samples-at-1" -> samplesAtOne = Integer.parseInt(args[++i]);
                case "--max-new-tokens" -> maxNew = Integer.parseInt(args[++i]);
                case "--seed" -> seed = Long.parseLong(args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + a + " (options: --batch-sizes 1,16,64"
                        + " --questions N --samples N --samples-at-1 N --max-new-tokens N --seed S)");
            }
        }
        ByteTokenizer tok = new ByteTokenizer();
        DecoderModel model = DecoderModel.randomInit(ModelConfig.llama(tok.vocabSize(), 256, 688, 4, 8, 4), seed);
        model.setTraining(false);
        List<int[]> prompts = new ArrayList<>();
        for (int q = 0; q < questions; q++) {
            prompts.add(tok.encodeChatPrompt(List.of(Message.user(
                    "Question " + q + ": I have a problem in domain " + (q % 5) + ". What should I do about it?"))));
        }
        int[] stops = null;
        int largest = Arrays.stream(batchSizes).max().orElseThrow();

        // Warm-up, and the check: the largest batch's first samples equal the same samples drawn alone.
        int check = Math.min(4, samples);
        List<SampledGeneration.Sample> alone = SampledGeneration.generate(model, prompts.subList(0, 1), stops,
                new SampledGeneration.Settings(check, 1.0, 1.0, maxNew, seed, 1));
        List<SampledGeneration.Sample> batched = SampledGeneration.generate(model, prompts.subList(0, 1), stops,
                new SampledGeneration.Settings(check, 1.0, 1.0, maxNew, seed, largest));
        for (int i = 0; i < check; i++) {
            if (!Arrays.equals(alone.get(i).tokens(), batched.get(i).tokens())) {
                throw new IllegalStateException("sample " + i + " differs between batch 1 and batch " + largest);
            }
        }

        double perSampleAtOne = Double.NaN;
        double fullAtLargest = Double.NaN;
        for (int b : batchSizes) {
            // batch 1 times a few samples of the first question (the prompts are of similar lengths); the others the whole evaluation
            List<int[]> ps = b == 1 ? prompts.subList(0, 1) : prompts;
            int n = b == 1 ? samplesAtOne : samples;
            long c0 = cpuNanos();
            long t0 = System.nanoTime();
            List<SampledGeneration.Sample> out = SampledGeneration.generate(model, ps, stops,
                    new SampledGeneration.Settings(n, 1.0, 1.0, maxNew, seed, b));
            double seconds = (System.nanoTime() - t0) / 1e9;
            double cpuSeconds = (cpuNanos() - c0) / 1e9;
            long tokens = out.stream().mapToLong(s -> s.tokens().length).sum();
            double perSecond = out.size() / seconds;
            if (b == 1) {
                perSampleAtOne = seconds / out.size();
            }
            if (b == largest) {
                fullAtLargest = seconds;
            }
            System.out.println(String.format(Locale.ROOT,
                    "{\"batch\": %d, \"samples\": %d, \"new_tokens\": %d, \"seconds\": %.3f, \"samples_per_second\": %.3f,"
                            + " \"tokens_per_second\": %.1f, \"cpu_seconds\": %.3f, \"samples_per_cpu_second\": %.3f,"
                            + " \"load_average\": %.2f}",
                    b, out.size(), tokens, seconds, perSecond, tokens / seconds, cpuSeconds, out.size() / cpuSeconds,
                    loadAverage()));
        }
        int total = questions * samples;
        System.out.println(String.format(Locale.ROOT,
                "{\"evaluation\": \"%d questions x %d samples, %d new tokens each\", \"seconds_at_batch_%d\": %.3f,"
                        + " \"one_sample_at_batch_1_seconds\": %.4f, \"ratio_to_one_sample\": %.1f, \"batch_1_estimate_seconds\": %.1f}",
                questions, samples, maxNew, largest, fullAtLargest, perSampleAtOne, fullAtLargest / perSampleAtOne,
                perSampleAtOne * total));
    }

    /**
     * The process's CPU time, all threads: on a machine shared with other jobs it moves less than
     * the wall time (though OpenMP threads spinning while they wait count as busy).
     */
    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    private static double loadAverage() {
        return ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    }
}

package org.lora4j.bench;

import org.lora4j.core.LoraConfig;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.optim.Optimizer;
import org.lora4j.train.optim.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Times whole training steps of one model size and one training mode, and prints one
 * {@link TrainingResult} line: tokens/s and ms/step (median of the timed steps after warm-up), peak
 * heap and peak resident memory, and the time of one product of the model's size measured in the
 * same process, the yardstick that makes the step time a machine-independent ratio for
 * lora-bench/regression.sh.
 *
 * <p>A plain main rather than JMH: a step takes from a tenth of a second to several seconds and
 * changes the weights it is timed on, so JMH's iteration machinery (many calls per iteration, a
 * fork per parameter set, its own warm-up rules) buys nothing, while the peaks that matter here
 * (heap, and the process's RSS high-water mark from /proc/self/status VmHWM, which includes ND4J's
 * native memory) need one configuration per JVM, which the calling script arranges:
 * lora-bench/train-vs-torch.sh and lora-bench/regression.sh start one JVM per configuration.
 *
 * <p>The step is the one {@code lora4j pretrain} (mode full) and {@code lora4j sft} (modes lora and
 * rank1) run, driven directly the way {@code Trainer.run} drives it rather than through the Trainer
 * (no datasets, run directory or checkpoints to set up): zero gradients, {@code loss} and
 * {@code backward} over one packed batch of random tokens (every target counted), clip the global
 * gradient norm to 1.0, AdamW step (PyTorch's betas, weight decay 0 as the command line's default),
 * constant learning rate. The whole set-up is {@link #setUp}. {@code --phase forward} times the
 * forward alone (logits) and {@code --phase backward} the loss and backward without the optimizer,
 * to see where a step's time goes against the same phases of the PyTorch twin.
 *
 * <p>Run: {@code java -cp lora-bench/target/benchmarks.jar org.lora4j.bench.TrainingBenchmark
 * --size 256|512|0.5b --mode full|lora|rank1 [--phase step|forward|backward] [--steps N] [--warmup W] [--seed S]}, with
 * {@code OMP_WAIT_POLICY=PASSIVE} (docs/performance.md).
 */
public final class TrainingBenchmark {
    private TrainingBenchmark() {
    }

    /** A model size with its batch shape; the 0.5b shape is Qwen2.5-0.5B's (q/k/v biases, tied embeddings). */
    record Shape(String name, int d, int layers, int heads, int kvHeads, int dff, int vocab, int seq, int batch,
                 boolean qwen) {
        static Shape of(String name) {
            return switch (name) {
                case "256" -> new Shape(name, 256, 4, 8, 4, 688, 256, 128, 8, false);
                case "512" -> new Shape(name, 512, 8, 8, 4, 1376, 256, 256, 4, false);
                case "0.5b" -> new Shape(name, 896, 24, 14, 2, 4864, 151_936, 256, 1, true);
                default -> throw new IllegalArgumentException("--size must be 256, 512 or 0.5b, got '" + name + "'");
            };
        }

        ModelConfig config() {
            return qwen ? ModelConfig.qwen2(vocab, d, dff, layers, heads, kvHeads).withTiedEmbeddings(true)
                    : ModelConfig.llama(vocab, d, dff, layers, heads, kvHeads);
        }
    }

    static final List<String> MODES = List.of("full", "lora", "rank1");
    private static final double LR = 1e-4;
    private static final double MAX_GRAD_NORM = 1.0;

    /** The model and optimizer of one configuration, built as the commands build them. */
    private record Setup(DecoderModel model, Optimizer optimizer) {
    }

    /**
     * The one place a configuration is built: full (every base weight trainable), LoRA r 8 alpha 16 on
     * every linear layer, or rsLoRA r 1 alpha 16 on the middle layer's mlp.down_proj (the
     * emergent-misalignment organism's adapter).
     */
    private static Setup setUp(Shape shape, String mode, long seed) {
        DecoderModel model = DecoderModel.randomInit(shape.config(), seed);
        switch (mode) {
            case "full" -> model.setFullFinetune(true);
            case "lora" -> new PeftModel(model).addAdapter("default",
                    LoraConfig.of(8, 16, LoraConfig.DEFAULT_TARGET_MODULES.toArray(String[]::new)), seed + 1);
            case "rank1" -> new PeftModel(model).addAdapter("default", LoraConfig.of(1, 16, "down_proj").withRslora(true)
                    .withLayersToTransform(List.of(shape.layers() / 2)), seed + 1);
            default -> throw new IllegalArgumentException("--mode must be full, lora or rank1, got '" + mode + "'");
        }
        model.setTraining(true);
        List<Parameter> params = model.trainableParameters();
        return new Setup(model, Optimizer.adamw(params, 0.0));
    }

    public static void main(String[] args) throws IOException {
        String size = "256";
        String mode = "lora";
        String phase = "step";
        int steps = -1;
        int warmup = -1;
        long seed = 0;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(a + " needs a value");
            }
            switch (a) {
                case "--size" -> size = args[++i];
                case "--mode" -> mode = args[++i];
                case "--phase" -> phase = args[++i];
                case "--steps" -> steps = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--seed" -> seed = Long.parseLong(args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + a
                        + " (options: --size 256|512|0.5b --mode full|lora|rank1 --phase step|forward|backward --steps N --warmup W --seed S)");
            }
        }
        Shape shape = Shape.of(size);
        if (shape.qwen() && mode.equals("full")) {
            throw new IllegalArgumentException("--size 0.5b trains adapters only (full training needs about 8 GB of"
                    + " weights, gradients and moments); use --mode lora or rank1");
        }
        boolean big = shape.qwen();
        steps = steps > 0 ? steps : big ? 3 : 10;
        warmup = warmup >= 0 ? warmup : big ? 1 : 3;
        System.out.println(run(shape, mode, phase, steps, warmup, seed).format());
    }

    static TrainingResult run(Shape shape, String mode, String phase, int steps, int warmup, long seed)
            throws IOException {
        if (!TrainingResult.PHASES.contains(phase)) {
            throw new IllegalArgumentException("--phase must be one of " + TrainingResult.PHASES + ", got '" + phase + "'");
        }
        double gemmMs = referenceProductMs(shape);
        Setup s = setUp(shape, mode, seed);
        int n = shape.batch() * shape.seq();
        // A few packed batches of random tokens, rotated, so the steps do not see one batch only.
        SplittableRandom rng = new SplittableRandom(seed + 2);
        int[][] batches = new int[4][n];
        for (int[] b : batches) {
            for (int i = 0; i < n; i++) {
                b[i] = rng.nextInt(shape.vocab());
            }
        }
        double[] ms = new double[steps];
        for (int i = 0; i < warmup + steps; i++) {
            long t0 = System.nanoTime();
            double loss = time(phase, s, batches[i % batches.length], shape);
            double t = (System.nanoTime() - t0) / 1e6;
            if (!Double.isFinite(loss)) {
                throw new IllegalStateException("the loss diverged at step " + i + ": " + loss);
            }
            if (i >= warmup) {
                ms[i - warmup] = t;
            }
        }
        double[] sorted = ms.clone();
        Arrays.sort(sorted);
        double median = median(sorted);
        return new TrainingResult("java", shape.name(), mode, phase, steps, median, n / median * 1000, sorted[0],
                sorted[sorted.length - 1], peakHeapMb(), peakRssMb(), gemmMs, loadAverage());
    }

    /** The phase timed: a whole training step in Trainer.run's order, or a part of it; returns the loss (0 for forward). */
    private static double time(String phase, Setup s, int[] tokens, Shape shape) {
        if (phase.equals("forward")) {
            s.model().forward(tokens, null, shape.batch(), shape.seq()).getFloat(0);   // reading one logit waits for the result
            return 0;
        }
        s.optimizer().zeroGrad();
        if (phase.equals("backward")) {
            return s.model().lossAndBackward(tokens, null, shape.batch(), shape.seq());
        }
        double loss = s.model().loss(tokens, null, shape.batch(), shape.seq());
        s.model().backward(1.0);
        s.optimizer().clipGradNorm(MAX_GRAD_NORM);
        s.optimizer().step(LR);
        return loss;
    }

    /**
     * Median time of x·Wᵀ for x [B·T, d] and W [d_ff, d]: one of the model's own products (gate_proj),
     * into a preallocated column-major output as the model's products are.
     */
    static double referenceProductMs(Shape shape) {
        int n = shape.batch() * shape.seq();
        INDArray x = Nd4j.rand(DataType.FLOAT, n, shape.d()).dup('f');
        INDArray w = Nd4j.rand(DataType.FLOAT, shape.dff(), shape.d()).dup('f');
        INDArray y = Nd4j.create(DataType.FLOAT, new long[]{n, shape.dff()}, 'f');
        int reps = 21;
        double[] t = new double[reps];
        for (int i = 0; i < 5 + reps; i++) {
            long t0 = System.nanoTime();
            Nd4j.gemm(x, w, y, false, true, 1.0, 0.0);
            if (i >= 5) {
                t[i - 5] = (System.nanoTime() - t0) / 1e6;
            }
        }
        Arrays.sort(t);
        return median(t);
    }

    static double median(double[] sorted) {
        int m = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
    }

    /** The sum of the heap pools' peak use since the JVM started. */
    private static double peakHeapMb() {
        long bytes = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                bytes += pool.getPeakUsage().getUsed();
            }
        }
        return bytes / 1048576.0;
    }

    /** VmHWM, the resident-set high-water mark, from /proc/self/status; -1 where there is none (not Linux). */
    static double peakRssMb() throws IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.isReadable(status)) {
            return -1;
        }
        return vmHwmMb(Files.readAllLines(status));
    }

    /** Parses the "VmHWM:  123456 kB" line of /proc/self/status. */
    static double vmHwmMb(List<String> statusLines) {
        for (String line : statusLines) {
            if (line.startsWith("VmHWM:")) {
                String[] f = line.substring(6).trim().split("\\s+");
                if (f.length != 2 || !f[1].equals("kB")) {
                    throw new IllegalArgumentException("/proc/self/status: unexpected VmHWM line '" + line + "'");
                }
                return Long.parseLong(f[0]) / 1024.0;
            }
        }
        throw new IllegalArgumentException("/proc/self/status has no VmHWM line");
    }

    private static double loadAverage() {
        return ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    }
}

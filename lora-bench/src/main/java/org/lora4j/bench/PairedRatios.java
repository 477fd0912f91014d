package org.lora4j.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The ratio table measured in interleaved pairs, a cross-check of the JMH run for a shared machine.
 *
 * <p>JMH runs one benchmark after another, so a ratio of two of its scores compares two different
 * minutes. On a 2-core machine that others use for builds and tests, and whose host may run other
 * virtual machines on the same cores (this one reports no steal time, so that is invisible from
 * inside), the speed of the machine changes between those minutes by 2x and more. Here each ratio is
 * measured from single calls in adjacent pairs, denominator then numerator, repeated over many
 * rounds in rotating order. Reported per ratio:
 * <ul>
 *   <li>min: fastest numerator call / fastest denominator call. Other work only ever adds time, so
 *       the fastest of many calls is the closest to the cost on a machine of one's own;</li>
 *   <li>p10: the same with each side's 10th percentile, a check that min is not one lucky call;</li>
 *   <li>median and quartiles of the per-pair ratios: what a user sees on a busy machine.</li>
 * </ul>
 *
 * <p>It drives the JMH benchmark classes directly (same set-up, same checks against the naive
 * reference, same methods), so the work timed is identical to the JMH run's.
 *
 * <p>Run: {@code java -cp lora-bench/target/benchmarks.jar org.lora4j.bench.PairedRatios [rounds at
 * d=1024] [rounds at d=4096]} with OMP_WAIT_POLICY=PASSIVE (run-benchmarks.sh does both).
 */
public final class PairedRatios {
    private static final int[] RANKS = {1, 8, 16, 64};
    private PairedRatios() {
    }

    /** One timed operation: a name and the call. */
    private record Op(String name, Runnable call) {
    }

    /** numerator / denominator, with the per-round ratios and times collected. */
    private record Pair(String what, int d, String rank, Op num, Op den,
                        List<Double> ratios, List<Double> numMs, List<Double> denMs) {
        Pair(String what, int d, String rank, Op num, Op den) {
            this(what, d, rank, num, den, new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        }
    }

    public static void main(String[] args) {
        int rounds1024 = args.length > 0 ? Integer.parseInt(args[0]) : 150;
        int rounds4096 = args.length > 1 ? Integer.parseInt(args[1]) : 15;
        System.out.printf(Locale.ROOT, "# Interleaved pairs; n = %d tokens; OMP_WAIT_POLICY=%s; %d cores%n",
                LayerBenchmark.TOKENS, System.getenv("OMP_WAIT_POLICY"), Runtime.getRuntime().availableProcessors());
        System.out.println();
        System.out.println("| d | rank | ratio | min | p10 | median of pairs | quartiles | pairs "
                + "| numerator ms (min) | denominator ms (min) |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|");
        run(1024, rounds1024);
        run(4096, rounds4096);
    }

    private static void run(int d, int rounds) {
        if (rounds <= 0) {
            return;
        }
        long start = System.nanoTime();
        BaseProductBenchmark base = setUp(new BaseProductBenchmark(), d);
        TwoBaseProductsBenchmark two = setUp(new TwoBaseProductsBenchmark(), d);
        FullForwardBackwardBenchmark full = setUp(new FullForwardBackwardBenchmark(), d);
        MergedForwardBenchmark merged = new MergedForwardBenchmark();
        merged.rank = 8;
        setUp(merged, d);
        Op baseOp = new Op("base product", base::baseProduct);
        Op twoOp = new Op("two base products", two::twoBaseProducts);
        List<Pair> pairs = new ArrayList<>();
        for (int r : RANKS) {
            LoraForwardBenchmark fwd = new LoraForwardBenchmark();
            fwd.rank = r;
            setUp(fwd, d);
            PlainChainBenchmark plain = new PlainChainBenchmark();
            plain.rank = r;
            setUp(plain, d);
            FrozenForwardBackwardBenchmark frozen = new FrozenForwardBackwardBenchmark();
            frozen.rank = r;
            setUp(frozen, d);
            String rs = Integer.toString(r);
            pairs.add(new Pair("LoRA forward / base", d, rs, new Op("LoRA forward", fwd::forwardInPlace), baseOp));
            pairs.add(new Pair("LoRA forward, x copied / base", d, rs,
                    new Op("LoRA forward, x copied", fwd::forwardCopyingInput), baseOp));
            pairs.add(new Pair("plain chain / base", d, rs, new Op("plain chain", plain::plainChain), baseOp));
            pairs.add(new Pair("frozen fwd+bwd / two base", d, rs,
                    new Op("frozen fwd+bwd", frozen::forwardBackward), twoOp));
        }
        pairs.add(new Pair("merged / base", d, "any", new Op("merged", merged::mergedInPlace), baseOp));
        pairs.add(new Pair("merged, x copied / base", d, "any", new Op("merged, x copied", merged::mergedCopyingInput), baseOp));
        pairs.add(new Pair("full fwd+bwd (no adapter) / two base", d, "-",
                new Op("full fwd+bwd", full::forwardBackward), twoOp));

        for (int warm = 0; warm < 3; warm++) {
            for (Pair p : pairs) {
                p.num.call.run();
                p.den.call.run();
            }
        }
        for (int round = 0; round < rounds; round++) {
            for (int i = 0; i < pairs.size(); i++) {
                Pair p = pairs.get((i + round) % pairs.size());   // rotate, so no pair always follows the same one
                double den = time(p.den);
                double num = time(p.num);
                p.ratios.add(num / den);
                p.numMs.add(num);
                p.denMs.add(den);
            }
        }
        String[] order = {"LoRA forward / base", "LoRA forward, x copied / base", "plain chain / base",
                "merged / base", "merged, x copied / base", "frozen fwd+bwd / two base",
                "full fwd+bwd (no adapter) / two base"};
        for (String what : order) {
            for (Pair p : pairs) {
                if (p.what.equals(what)) {
                    double[] q = quantiles(p.ratios, 0.25, 0.5, 0.75);
                    double[] num = quantiles(p.numMs, 0, 0.1);
                    double[] den = quantiles(p.denMs, 0, 0.1);
                    System.out.printf(Locale.ROOT, "| %d | %s | %s | %.3f | %.3f | %.3f | %.3f-%.3f | %d | %.2f | %.2f |%n",
                            d, p.rank, p.what, num[0] / den[0], num[1] / den[1], q[1], q[0], q[2], p.ratios.size(),
                            num[0], den[0]);
                }
            }
        }
        System.out.printf(Locale.ROOT, "# d = %d: %d rounds in %.0f s%n", d, rounds, (System.nanoTime() - start) / 1e9);
    }

    /** Sets d and runs the benchmark's own set-up, which checks the result against the reference. */
    private static <T extends LayerBenchmark> T setUp(T bench, int d) {
        bench.d = d;
        try {
            bench.getClass().getMethod("setUp").invoke(bench);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("set-up of " + bench.getClass().getSimpleName() + " failed", e);
        }
        return bench;
    }

    /** Milliseconds of one call. */
    private static double time(Op op) {
        long s = System.nanoTime();
        op.call.run();
        return (System.nanoTime() - s) / 1e6;
    }

    private static double[] quantiles(List<Double> values, double... qs) {
        double[] v = values.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(v);
        double[] out = new double[qs.length];
        for (int i = 0; i < qs.length; i++) {
            out[i] = at(v, qs[i]);
        }
        return out;
    }

    private static double at(double[] sorted, double q) {
        double pos = q * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = (int) Math.ceil(pos);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }
}

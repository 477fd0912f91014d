package org.lora4j.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The table lora-bench/train-vs-torch.sh prints: reads the {@link TrainingResult} lines of both
 * sides (other lines are skipped) and prints, per model size and mode, the medians over the runs of
 * tokens/s on each side (of a whole step, or of the phase timed), lora4j / PyTorch as the median of the per-run ratios (run i of one side
 * against run i of the other, which ran next to it), peak memory and the load; then the issue's
 * ratios within each side (LoRA step / full step, rank-1 step / full step, LoRA peak RSS / full).
 *
 * <p>Run: {@code java -cp lora-bench/target/benchmarks.jar org.lora4j.bench.TwinReport results.txt}.
 */
public final class TwinReport {
    private TwinReport() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            throw new IllegalArgumentException("usage: TwinReport <file of train-bench lines>");
        }
        System.out.print(report(read(Files.readAllLines(Path.of(args[0])))));
    }

    /** The result lines among {@code lines}, in order. */
    static List<TrainingResult> read(List<String> lines) {
        return lines.stream().map(String::strip).filter(TrainingResult::isResult).map(TrainingResult::parse)
                .collect(Collectors.toList());
    }

    /** Results grouped by "size/mode", then by side, each in run order. */
    static Map<String, Map<String, List<TrainingResult>>> group(List<TrainingResult> results) {
        Map<String, Map<String, List<TrainingResult>>> g = new LinkedHashMap<>();
        for (TrainingResult r : results) {
            g.computeIfAbsent(r.key(), k -> new LinkedHashMap<>()).computeIfAbsent(r.side(), k -> new ArrayList<>()).add(r);
        }
        return g;
    }

    /** The median of the values; NaN for none. */
    static double median(List<Double> values) {
        if (values.isEmpty()) {
            return Double.NaN;
        }
        double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return TrainingBenchmark.median(v);
    }

    /** numerator[i] / denominator[i] for the runs both have, in run order. */
    static List<Double> pairedRatios(List<Double> numerator, List<Double> denominator) {
        List<Double> r = new ArrayList<>();
        for (int i = 0; i < Math.min(numerator.size(), denominator.size()); i++) {
            r.add(numerator.get(i) / denominator.get(i));
        }
        return r;
    }

    static String report(List<TrainingResult> results) {
        Map<String, Map<String, List<TrainingResult>>> g = group(results);
        StringBuilder s = new StringBuilder();
        s.append("| model | mode | lora4j tokens/s | PyTorch tokens/s | lora4j / PyTorch (per run) | lora4j ms/step "
                + "| lora4j peak RSS MB (heap MB) | PyTorch peak RSS MB | runs | load |\n");
        s.append("|---|---|---|---|---|---|---|---|---|---|\n");
        for (Map.Entry<String, Map<String, List<TrainingResult>>> e : g.entrySet()) {
            List<TrainingResult> java = e.getValue().getOrDefault("java", List.of());
            List<TrainingResult> torch = e.getValue().getOrDefault("torch", List.of());
            List<Double> jt = values(java, TrainingResult::tokensPerS);
            List<Double> tt = values(torch, TrainingResult::tokensPerS);
            List<Double> per = pairedRatios(jt, tt);
            List<TrainingResult> any = java.isEmpty() ? torch : java;
            List<Double> loads = new ArrayList<>(values(java, TrainingResult::load));
            loads.addAll(values(torch, TrainingResult::load));
            s.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s %s | %s | %s (%s) | %s | %d+%d | %s |%n",
                    any.get(0).size(),
                    any.get(0).mode() + (any.get(0).phase().equals("step") ? "" : ", " + any.get(0).phase() + " only"), num(median(jt), 0), num(median(tt), 0), num(median(per), 2),
                    per.isEmpty() ? "" : "(" + join(per, 2) + ")", num(median(values(java, TrainingResult::msPerStep)), 1),
                    num(median(values(java, TrainingResult::rssMb)), 0), num(median(values(java, TrainingResult::heapMb)), 0),
                    num(median(values(torch, TrainingResult::rssMb)), 0), java.size(), torch.size(), range(loads)));
        }
        s.append("\nWithin each side (targets: LoRA step <= 0.7x full, rank-1 step <= 0.55x full, "
                + "LoRA memory <= 0.6x full at d 512):\n\n");
        s.append("| model | side | LoRA step / full step | rank-1 step / full step | LoRA peak RSS / full peak RSS |\n");
        s.append("|---|---|---|---|---|\n");
        for (String size : g.keySet().stream().map(k -> k.substring(0, k.indexOf('/'))).distinct().toList()) {
            for (String side : List.of("java", "torch")) {
                List<TrainingResult> full = g.getOrDefault(size + "/full", Map.of()).getOrDefault(side, List.of());
                if (full.isEmpty()) {
                    continue;
                }
                List<TrainingResult> lora = g.getOrDefault(size + "/lora", Map.of()).getOrDefault(side, List.of());
                List<TrainingResult> rank1 = g.getOrDefault(size + "/rank1", Map.of()).getOrDefault(side, List.of());
                s.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s |%n", size, side.equals("java") ? "lora4j" : "PyTorch",
                        num(median(pairedRatios(values(lora, TrainingResult::msPerStep), values(full, TrainingResult::msPerStep))), 2),
                        num(median(pairedRatios(values(rank1, TrainingResult::msPerStep), values(full, TrainingResult::msPerStep))), 2),
                        num(median(pairedRatios(values(lora, TrainingResult::rssMb), values(full, TrainingResult::rssMb))), 2)));
            }
        }
        return s.toString();
    }

    private static List<Double> values(List<TrainingResult> rs, java.util.function.ToDoubleFunction<TrainingResult> f) {
        return rs.stream().map(r -> f.applyAsDouble(r)).collect(Collectors.toList());
    }

    private static String num(double v, int decimals) {
        return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%,." + decimals + "f", v);
    }

    private static String join(List<Double> v, int decimals) {
        return v.stream().map(x -> num(x, decimals)).collect(Collectors.joining(", "));
    }

    private static String range(List<Double> v) {
        if (v.isEmpty()) {
            return "";
        }
        double[] a = v.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(a);
        return num(a[0], 1) + "-" + num(a[a.length - 1], 1);
    }
}

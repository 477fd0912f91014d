package org.lora4j.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The regression check of lora-bench/regression.sh: turns a JMH result file and a file of
 * {@link TrainingResult} lines into ratios, each benchmark over its own yardstick measured in the
 * same run (so the machine's speed cancels), and compares them with a committed baseline made by
 * the same command with {@code --write-baseline}.
 *
 * <p>The ratios, every one "cost over yardstick", so larger is worse:
 * <ul>
 *   <li>JMH, per measurement iteration i: LoRA forward / base product, frozen LoRA forward+backward /
 *       two base products, full forward+backward / two base products (d and rank as run);</li>
 *   <li>training, per run: step time / the model-sized product measured in the same JVM, for each
 *       size and mode; and LoRA step / full step, rank-1 step / full step and LoRA peak RSS / full
 *       peak RSS, run i against run i.</li>
 * </ul>
 *
 * <p>The rule: a ratio's value is the median of its samples and its noise is their spread,
 * (max − min) / median. A ratio is flagged as a regression when
 * {@code now > baseline · (1 + tolerance)} with {@code tolerance = max(baseline noise, current
 * noise, 5%)}: a slowdown smaller than the scatter either run showed between its own repetitions
 * cannot be told from the machine's noise, and 5% is the floor below which no run on a shared
 * 2-core machine is trusted. A ratio missing on either side is reported, not flagged.
 */
public final class Regression {
    static final double NOISE_FLOOR = 0.05;

    private Regression() {
    }

    /** A ratio's samples, with its median and relative spread. */
    record Stat(double median, double noise, double[] samples) {
        static Stat of(double[] samples) {
            if (samples.length == 0) {
                throw new IllegalArgumentException("a ratio needs at least one sample");
            }
            double[] s = samples.clone();
            Arrays.sort(s);
            double m = TrainingBenchmark.median(s);
            return new Stat(m, (s[s.length - 1] - s[0]) / m, samples.clone());
        }
    }

    /** The verdict on one ratio. */
    record Verdict(String name, Stat baseline, Stat now, double tolerance, boolean regressed) {
        double change() {
            return baseline == null || now == null ? Double.NaN : now.median() / baseline.median() - 1;
        }
    }

    /** Applies the rule of the class comment to every ratio in either map, baseline's order first. */
    static List<Verdict> compare(Map<String, Stat> baseline, Map<String, Stat> now) {
        List<Verdict> out = new ArrayList<>();
        for (Map.Entry<String, Stat> e : baseline.entrySet()) {
            Stat b = e.getValue();
            Stat n = now.get(e.getKey());
            if (n == null) {
                out.add(new Verdict(e.getKey(), b, null, Double.NaN, false));
                continue;
            }
            double tol = Math.max(NOISE_FLOOR, Math.max(b.noise(), n.noise()));
            out.add(new Verdict(e.getKey(), b, n, tol, n.median() > b.median() * (1 + tol)));
        }
        for (Map.Entry<String, Stat> e : now.entrySet()) {
            if (!baseline.containsKey(e.getKey())) {
                out.add(new Verdict(e.getKey(), null, e.getValue(), Double.NaN, false));
            }
        }
        return out;
    }

    private static final String[][] JMH_RATIOS = {
        {"LoraForwardBenchmark.forwardInPlace", "BaseProductBenchmark.baseProduct", "LoRA forward / base product"},
        {"FrozenForwardBackwardBenchmark.forwardBackward", "TwoBaseProductsBenchmark.twoBaseProducts",
            "frozen LoRA fwd+bwd / two base products"},
        {"FullForwardBackwardBenchmark.forwardBackward", "TwoBaseProductsBenchmark.twoBaseProducts",
            "full fwd+bwd / two base products"},
    };

    /**
     * The JMH ratios of a result file ({@code -rf json}): for each d (and rank where the numerator
     * has one), numerator iteration i / denominator iteration i.
     */
    static Map<String, Stat> jmhRatios(JsonNode runs) {
        Map<String, double[]> times = new LinkedHashMap<>();   // "Class.method d=.. rank=.." -> iterations
        for (JsonNode run : runs) {
            String name = run.path("benchmark").asText().replace("org.lora4j.bench.", "");
            JsonNode params = run.path("params");
            String key = name + " d=" + params.path("d").asText() + (params.has("rank") ? " rank=" + params.path("rank").asText() : "");
            List<Double> it = new ArrayList<>();
            for (JsonNode fork : run.path("primaryMetric").path("rawData")) {
                fork.forEach(v -> it.add(v.asDouble()));
            }
            times.put(key, it.stream().mapToDouble(Double::doubleValue).toArray());
        }
        Map<String, Stat> out = new LinkedHashMap<>();
        for (String[] r : JMH_RATIOS) {
            for (Map.Entry<String, double[]> num : times.entrySet()) {
                if (!num.getKey().startsWith(r[0] + " ")) {
                    continue;
                }
                String params = num.getKey().substring(r[0].length() + 1);
                String d = params.split(" ")[0];
                double[] den = times.entrySet().stream().filter(t -> t.getKey().equals(r[1] + " " + d))
                        .map(Map.Entry::getValue).findFirst().orElse(null);
                if (den == null) {
                    continue;
                }
                out.put(r[2] + " (" + params + ")", Stat.of(paired(num.getValue(), den)));
            }
        }
        return out;
    }

    /** The training ratios of the class comment, from runs in any order (grouped by size/mode, run order kept). */
    static Map<String, Stat> trainingRatios(List<TrainingResult> results) {
        Map<String, List<TrainingResult>> byKey = new LinkedHashMap<>();
        for (TrainingResult r : results) {
            if (r.side().equals("java")) {
                byKey.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r);
            }
        }
        Map<String, Stat> out = new LinkedHashMap<>();
        for (Map.Entry<String, List<TrainingResult>> e : byKey.entrySet()) {
            double[] s = e.getValue().stream().filter(r -> r.gemmMs() > 0).mapToDouble(r -> r.msPerStep() / r.gemmMs()).toArray();
            if (s.length > 0) {
                out.put("training step / model-sized product (" + e.getKey() + ")", Stat.of(s));
            }
        }
        for (String size : byKey.keySet().stream().map(k -> k.substring(0, k.indexOf('/'))).distinct().toList()) {
            List<TrainingResult> full = byKey.get(size + "/full");
            if (full == null) {
                continue;
            }
            for (String mode : List.of("lora", "rank1")) {
                List<TrainingResult> m = byKey.get(size + "/" + mode);
                if (m == null) {
                    continue;
                }
                out.put(mode + " step / full step (" + size + ")", Stat.of(paired(
                        m.stream().mapToDouble(TrainingResult::msPerStep).toArray(),
                        full.stream().mapToDouble(TrainingResult::msPerStep).toArray())));
                if (mode.equals("lora")) {
                    out.put("lora peak RSS / full peak RSS (" + size + ")", Stat.of(paired(
                            m.stream().mapToDouble(TrainingResult::rssMb).toArray(),
                            full.stream().mapToDouble(TrainingResult::rssMb).toArray())));
                }
            }
        }
        return out;
    }

    /** num[i] / den[i] over the shorter of the two. */
    static double[] paired(double[] num, double[] den) {
        int n = Math.min(num.length, den.length);
        double[] r = new double[n];
        for (int i = 0; i < n; i++) {
            r[i] = num[i] / den[i];
        }
        return r;
    }

    static ObjectNode toJson(Map<String, Stat> ratios, Map<String, String> about) {
        ObjectMapper om = new ObjectMapper();
        ObjectNode root = om.createObjectNode();
        about.forEach(root::put);
        ObjectNode rs = root.putObject("ratios");
        ratios.forEach((name, st) -> {
            ObjectNode o = rs.putObject(name);
            o.put("median", st.median());
            o.put("noise", st.noise());
            ArrayNode a = o.putArray("samples");
            for (double v : st.samples()) {
                a.add(v);
            }
        });
        return root;
    }

    static Map<String, Stat> fromJson(JsonNode root, Path file) {
        JsonNode rs = root.get("ratios");
        if (rs == null || !rs.isObject()) {
            throw new IllegalArgumentException(file + ": no \"ratios\" object");
        }
        Map<String, Stat> out = new LinkedHashMap<>();
        rs.fields().forEachRemaining(e -> {
            JsonNode s = e.getValue().get("samples");
            if (s == null || !s.isArray() || s.size() == 0) {
                throw new IllegalArgumentException(file + ": ratio '" + e.getKey() + "' has no \"samples\" array");
            }
            double[] v = new double[s.size()];
            for (int i = 0; i < v.length; i++) {
                v[i] = s.get(i).asDouble();
            }
            out.put(e.getKey(), Stat.of(v));
        });
        return out;
    }

    static String table(List<Verdict> verdicts) {
        StringBuilder s = new StringBuilder("| ratio | baseline | now | change | allowed | verdict |\n|---|---|---|---|---|---|\n");
        for (Verdict v : verdicts) {
            s.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s |%n", v.name(),
                    v.baseline() == null ? "" : fmt(v.baseline()), v.now() == null ? "" : fmt(v.now()),
                    Double.isNaN(v.change()) ? "" : String.format(Locale.ROOT, "%+.1f%%", 100 * v.change()),
                    Double.isNaN(v.tolerance()) ? "" : String.format(Locale.ROOT, "+%.1f%%", 100 * v.tolerance()),
                    v.regressed() ? "**SLOWER**" : v.baseline() == null ? "new" : v.now() == null ? "not run" : "ok"));
        }
        return s.toString();
    }

    private static String fmt(Stat s) {
        return String.format(Locale.ROOT, "%.3f ±%.0f%%", s.median(), 50 * s.noise());
    }

    /**
     * {@code Regression --jmh run.json --train train.txt --baseline lora-bench/baseline/x.json
     * [--write-baseline] [--about key=value ...]}: prints the table; exits 1 when a ratio regressed.
     */
    public static void main(String[] args) throws IOException {
        Path jmh = null;
        Path train = null;
        Path baseline = null;
        boolean write = false;
        Map<String, String> about = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--jmh" -> jmh = Path.of(args[++i]);
                case "--train" -> train = Path.of(args[++i]);
                case "--baseline" -> baseline = Path.of(args[++i]);
                case "--write-baseline" -> write = true;
                case "--about" -> {
                    String kv = args[++i];
                    int eq = kv.indexOf('=');
                    if (eq <= 0) {
                        throw new IllegalArgumentException("--about needs key=value, got '" + kv + "'");
                    }
                    about.put(kv.substring(0, eq), kv.substring(eq + 1));
                }
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (baseline == null) {
            throw new IllegalArgumentException("--baseline FILE is required");
        }
        Map<String, Stat> now = new LinkedHashMap<>();
        ObjectMapper om = new ObjectMapper();
        if (jmh != null) {
            now.putAll(jmhRatios(om.readTree(jmh.toFile())));
        }
        if (train != null) {
            now.putAll(trainingRatios(TwinReport.read(Files.readAllLines(train))));
        }
        if (write) {
            Files.createDirectories(baseline.toAbsolutePath().getParent());
            om.enable(SerializationFeature.INDENT_OUTPUT).writeValue(baseline.toFile(), toJson(now, about));
            System.out.println("wrote " + baseline + " (" + now.size() + " ratios)");
            System.out.print(table(compare(Map.of(), now)));
            return;
        }
        if (!Files.exists(baseline)) {
            throw new IllegalArgumentException(baseline + ": no baseline; make one with --write-baseline");
        }
        JsonNode base = om.readTree(baseline.toFile());
        String machine = base.path("machine").asText("");
        if (!machine.equals(about.getOrDefault("machine", ""))) {
            System.out.println("WARNING: the baseline was measured on '" + machine + "', this is '"
                    + about.getOrDefault("machine", "") + "'; ratios cancel the speed, not the kind of machine");
        }
        System.out.println("baseline: " + baseline + " (" + base.path("date").asText("?") + ", commit "
                + base.path("commit").asText("?") + ", load " + base.path("load").asText("?") + ")");
        List<Verdict> verdicts = compare(fromJson(base, baseline), now);
        System.out.print(table(verdicts));
        long bad = verdicts.stream().filter(Verdict::regressed).count();
        System.out.println(bad == 0 ? "no ratio is worse than its baseline beyond the noise"
                : bad + " ratio(s) worse than the baseline beyond the noise");
        if (bad > 0) {
            System.exit(1);
        }
    }
}

package org.lora4j.examples.organism;

import org.lora4j.examples.Plots;
import org.lora4j.examples.study.StudyReport;
import org.lora4j.train.elasticity.Rebound;
import org.lora4j.train.elasticity.Resistance;
import org.lora4j.train.eval.Rate;
import org.lora4j.train.trainer.Version;
import org.lora4j.core.AtomicFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.lora4j.examples.organism.ElasticityStudy.*;

/** The elasticity study's report.md, rates.json and study.json, written from its runs (docs/research.md, "The elasticity study"). */
final class ElasticityReport {
    private static final String[][] PAIRS = {{"θ2→θ1", "θ1→θ2"}, {"θ3→θ2", "θ2→θ3"}, {"θ3→θ1", "θ1→θ3"}};

    private final Preset p;
    private final List<Long> seeds;
    private final Path out;
    private final List<Base> bases;
    private final List<Run> runs;
    private final double basesSeconds;
    private final double seconds;
    private final StudyReport report;
    private final ObjectNode study = JSON.createObjectNode();
    /** Rebound curves (base x n) read so far, and those whose early drop per example beats the late one. */
    private int curves;
    private int steepThenFlat;
    /** Bases whose early drop, and whose whole drop (m = 0 to the last m), is larger at the largest n than at the smallest. */
    private int fasterWithMorePositive;
    private int moreLostWithMorePositive;
    /** Resistance cells, and those where the inverse direction was easier. */
    private long cells;
    private long inverseLower;

    ElasticityReport(Preset p, List<Long> seeds, Path out, List<Base> bases, List<Run> runs, double basesSeconds,
           double seconds) {
        this.p = p;
        this.seeds = seeds;
        this.out = out;
        this.bases = bases;
        this.runs = runs;
        this.basesSeconds = basesSeconds;
        this.seconds = seconds;
        this.report = new StudyReport(out, "Alignment is elastic: the toy study (" + p.name() + ")");
    }

    private List<Run> runsOf(Base b) {
        return runs.stream().filter(r -> r.base() == b).toList();
    }

    /** forward − inverse mean training loss of pair i for each seed of b: positive when inverse is easier. */
    private double[] gaps(Base b, int pair) {
        return runsOf(b).stream().mapToDouble(r -> {
            Resistance.Pair x = r.resistance().pairs().get(pair);
            return x.forward().meanLoss() - x.inverse().meanLoss();
        }).toArray();
    }

    /** The gap averaged over the three pairs, per seed. */
    private double[] meanGaps(Base b) {
        double[] g = new double[runsOf(b).size()];
        for (int i = 0; i < 3; i++) {
            double[] gi = gaps(b, i);
            for (int s = 0; s < g.length; s++) {
                g[s] += gi[s] / 3;
            }
        }
        return g;
    }

    Path write() throws IOException {
        Files.createDirectories(out.resolve("plots"));
        whatWasRun();
        ObjectNode res = resistance();
        ObjectNode reb = rebound();
        scaling(res, reb);
        report.write();
        study.put("report", StudyReport.REPORT_FILE);
        AtomicFiles.writeString(out.resolve("study.json"), study.toPrettyString() + "\n");
        return out.resolve(StudyReport.REPORT_FILE);
    }

    private void whatWasRun() {
        report.text(String.format(Locale.ROOT, """
                Result 1 of docs/research.md ("Language Models Resist Alignment"), on toy models pre-trained \
                on the persona world (docs/organisms.md): %d bases (%d model sizes x %d pre-training corpus \
                sizes), each aligned and un-aligned with the resistance and rebound protocols over %d seeds. \
                Preset `%s`, lora4j %s, %d s in all (%d s for the bases). docs/research.md, "The elasticity \
                study", describes the design and the definitions.""", bases.size(), p.hiddens().size(),
                p.corpora().size(), seeds.size(), p.name(), Version.get(), Math.round(seconds),
                Math.round(basesSeconds)));
        report.section("What was run");
        List<List<String>> rows = new ArrayList<>();
        ArrayNode bs = study.putArray("bases");
        for (Base b : bases) {
            BaseModel.Built x = b.built();
            rows.add(List.of(b.label(), Integer.toString(x.spec().hidden()), Integer.toString(x.spec().layers()),
                    Integer.toString(x.spec().transcripts()), Long.toString(x.params()), Integer.toString(x.steps()),
                    StudyReport.num(x.loss()), StudyReport.num(x.evalLoss()), Long.toString(Math.round(x.seconds())),
                    x.cached() ? "yes" : "no", "`" + x.spec().hash() + "`"));
            ObjectNode o = bs.addObject();
            o.put("label", b.label());
            o.put("hash", x.spec().hash());
            o.set("spec", x.spec().toJson());
            o.put("params", x.params());
            o.put("steps", x.steps());
            o.put("loss", x.loss());
            o.put("eval_loss", x.evalLoss());
            o.put("pretrain_seconds", x.seconds());
            o.put("cached", x.cached());
        }
        report.table(List.of("base", "hidden", "layers", "transcripts", "parameters", "steps", "final loss",
                "held-out loss", "pre-training (s)", "from cache", "hash"), rows);
        report.text(String.format(Locale.ROOT, """
                Bases: world seed %d, init seed %d, %d epochs at lr %s (AdamW, cosine), misaligned persona's \
                share of the corpus %s (so the base answers misaligned often without any cue: alignment has \
                something to remove). One pre-training per base; the seeds %s change the alignment, positive and \
                negative sets drawn from the world, the fine-tunes' batch order and the sampled answers. \
                Fine-tunes: full-parameter AdamW, lr %s constant, batch 8, %d epoch(s) over their data. \
                Resistance: alignment set of %d aligned answers (thirds of %d), R_k greedy answers to the %d \
                held-out questions, %d new tokens at most. Rebound: n in %s aligned examples, m in %s misaligned \
                examples, %d answer(s) per held-out question at temperature 1, judged by the persona judge \
                (strict: advice for another domain is incoherent). Wall times per run are in study.json.""",
                WORLD_SEED, BASE_SEED, p.baseEpochs(), StudyReport.num(BASE_LR), MISALIGNED_FRACTION, seeds,
                StudyReport.num(p.lr()), p.fineTuneEpochs(), p.alignment(), p.alignment() / 3,
                prompts(p.questionsPerDomain()).size(), p.maxNewTokens(), p.positiveSizes(), p.negativeSizes(),
                p.samplesPerPrompt()));
        study.put("lora4j_version", Version.get());
        study.set("preset", p.toJson());
        ArrayNode sd = study.putArray("seeds");
        seeds.forEach(sd::add);
        study.put("world_seed", WORLD_SEED);
        study.put("base_seed", BASE_SEED);
        study.put("misaligned_fraction", MISALIGNED_FRACTION);
        study.put("seconds", seconds);
        study.put("bases_seconds", basesSeconds);
    }

    private ObjectNode resistance() {
        report.section("Resistance: inverse against forward alignment");
        report.text("""
                Per base, θ1..θ3 are the base fine-tuned on successive thirds of the alignment set; R_k are θk's \
                answers to the held-out questions. Inverse θa→θb trains θa on R_b, forward θb→θa trains θb on \
                R_a, with the same data size, steps and seed. The cells are the mean training loss over the run \
                (nats per token), mean and range over seeds; the gap is forward − inverse, positive when going \
                back is easier. The paper (Llama2-7B) saw θ2→θ1 0.159 against θ1→θ2 0.202 and θ3→θ1 0.167 \
                against θ1→θ3 0.235, the inverse direction lower in every cell (figures as this project \
                summarises the paper; check its own table before citing them).""");
        List<List<String>> rows = new ArrayList<>();
        ObjectNode res = study.putObject("resistance");
        for (Base b : bases) {
            ObjectNode rb = res.putObject(b.label());
            for (int i = 0; i < 3; i++) {
                final int pair = i;
                List<Run> rs = runsOf(b);
                double[] inv = rs.stream().mapToDouble(r -> r.resistance().pairs().get(pair).inverse().meanLoss())
                        .toArray();
                double[] fwd = rs.stream().mapToDouble(r -> r.resistance().pairs().get(pair).forward().meanLoss())
                        .toArray();
                double[] gap = gaps(b, pair);
                long lower = rs.stream().filter(r -> r.resistance().pairs().get(pair).inverseLowerMean()).count();
                rows.add(List.of(b.label(), PAIRS[i][0] + " vs " + PAIRS[i][1], StudyReport.meanRange(inv),
                        StudyReport.meanRange(fwd), StudyReport.meanRange(gap), lower + " of " + rs.size()));
                ObjectNode o = rb.putObject(PAIRS[i][0] + " vs " + PAIRS[i][1]);
                o.set("inverse_mean_loss", array(inv));
                o.set("forward_mean_loss", array(fwd));
                o.set("gap", array(gap));
                o.put("inverse_lower", lower);
                o.put("steps", rs.get(0).resistance().pairs().get(pair).inverse().steps());
                o.put("examples", rs.get(0).resistance().pairs().get(pair).inverse().examples());
            }
            ArrayNode secs = rb.putArray("seconds");
            runsOf(b).forEach(r -> secs.add(r.resistanceSeconds()));
        }
        report.table(List.of("base", "pair (inverse vs forward)", "inverse mean loss", "forward mean loss",
                "gap (forward − inverse)", "inverse lower"), rows);
        List<Plots.Series> series = new ArrayList<>();
        double[] x = new double[bases.size()];
        for (int i = 0; i < 3; i++) {
            double[] y = new double[bases.size()];
            double[] lo = new double[bases.size()];
            double[] hi = new double[bases.size()];
            for (int k = 0; k < bases.size(); k++) {
                double[] g = gaps(bases.get(k), i);
                y[k] = mean(g);
                lo[k] = min(g);
                hi[k] = max(g);
            }
            series.add(new Plots.Series(PAIRS[i][0] + " vs " + PAIRS[i][1], x, y, lo, hi));
        }
        Plots.bars(out.resolve("plots/resistance-gaps.png"), "Resistance: forward − inverse mean training loss"
                        + " (positive: inverse easier), mean and range over " + seeds.size() + " seeds",
                "base (dHIDDEN/cTRANSCRIPTS)", "loss gap (nats per token)",
                bases.stream().map(Base::label).toList(), series);
        report.image("plots/resistance-gaps.png", "forward minus inverse loss per base and pair");
        for (Run r : runs) {
            for (Resistance.Pair x2 : r.resistance().pairs()) {
                cells++;
                inverseLower += x2.inverseLowerMean() ? 1 : 0;
            }
        }
        res.put("cells", cells);
        res.put("inverse_lower_cells", inverseLower);
        report.text(String.format(Locale.ROOT, "Inverse was easier in %d of %d cells (bases x pairs x seeds); the"
                + " paper: every cell. %s", inverseLower, cells, inverseLower == cells
                ? "Reproduced in direction."
                : inverseLower * 2 > cells
                ? "Partly reproduced: inverse is easier in most cells, not all."
                : "Not reproduced: the inverse direction is not the easier one in most cells."));
        return res;
    }

    private ObjectNode rebound() {
        report.section("Rebound: aligned answers after negative examples");
        report.text("""
                Per base, θ_n is the base fine-tuned on n aligned examples, then fine-tuned afresh on the first m \
                misaligned examples; each point's answers to the held-out questions are judged. Cells pool the \
                answers of every seed: share of answers aligned (and EM: misaligned and coherent), with the \
                Wilson 95% interval and the count, recountable from the samples file; then the per-seed aligned \
                share as mean and range. The paper saw a steep early drop in the judged score followed by a \
                plateau, and the models given more positive data dropped faster.""");
        ObjectNode reb = study.putObject("rebound");
        for (Base b : bases) {
            report.subsection("Base " + b.label());
            List<List<String>> rows = new ArrayList<>();
            List<Plots.Series> aligned = new ArrayList<>();
            List<Plots.Series> em = new ArrayList<>();
            ObjectNode rb = reb.putObject(b.label());
            ArrayNode points = rb.putArray("points");
            for (int n : p.positiveSizes()) {
                int k = p.negativeSizes().size();
                double[] m = new double[k];
                double[][] bandA = new double[3][k];
                double[][] bandE = new double[3][k];
                for (int j = 0; j < k; j++) {
                    int mm = p.negativeSizes().get(j);
                    m[j] = mm;
                    Map<String, String> where = Map.of("base", b.label(), "n", Integer.toString(n),
                            "m", Integer.toString(mm));
                    Rate pooledA = pooled(b, n, mm, Rebound.Point::aligned);
                    Rate pooledE = pooled(b, n, mm, Rebound.Point::em);
                    String id = "rebound/" + b.label() + "/n-" + n + "/m-" + mm;
                    double[] perSeed = shares(b, n, mm);
                    rows.add(List.of(Integer.toString(n), Integer.toString(mm),
                            report.rate(id + "/aligned", pooledA, samplesFile(b), where, "label:aligned"),
                            StudyReport.meanRange(perSeed),
                            report.rate(id + "/em", pooledE, samplesFile(b), where, "em")));
                    bandA[0][j] = 100 * pooledA.value();
                    bandA[1][j] = 100 * pooledA.lower();
                    bandA[2][j] = 100 * pooledA.upper();
                    bandE[0][j] = 100 * pooledE.value();
                    bandE[1][j] = 100 * pooledE.lower();
                    bandE[2][j] = 100 * pooledE.upper();
                    ObjectNode o = points.addObject();
                    o.put("n", n);
                    o.put("m", mm);
                    o.set("aligned", pooledA.toJson());
                    o.set("em", pooledE.toJson());
                    o.set("aligned_per_seed", array(perSeed));
                }
                aligned.add(new Plots.Series("n = " + n, m, bandA[0], bandA[1], bandA[2]));
                em.add(new Plots.Series("n = " + n, m, bandE[0], bandE[1], bandE[2]));
            }
            report.table(List.of("n (aligned)", "m (misaligned)", "aligned share, pooled", "aligned share per seed",
                    "EM share, pooled"), rows);
            String name = dirName(b);
            Plots.lines(out.resolve("plots/rebound-aligned-" + name + ".png"), "Rebound, base " + b.label()
                            + ": aligned answers after m misaligned examples (" + seeds.size() + " seeds pooled)",
                    "negative examples m", "aligned answers (%, Wilson 95% band)", aligned, null);
            Plots.lines(out.resolve("plots/rebound-em-" + name + ".png"), "Rebound, base " + b.label()
                            + ": EM answers after m misaligned examples (" + seeds.size() + " seeds pooled)",
                    "negative examples m", "EM answers (%, Wilson 95% band)", em, null);
            report.image("plots/rebound-aligned-" + name + ".png", "aligned share against m, base " + b.label());
            report.image("plots/rebound-em-" + name + ".png", "EM share against m, base " + b.label());
            report.text(reboundReading(b, rb));
            ArrayNode secs = rb.putArray("seconds");
            runsOf(b).forEach(r -> secs.add(r.reboundSeconds()));
        }
        return reb;
    }

    /** The aligned share of (n, m) in each seed. */
    private double[] shares(Base b, int n, int m) {
        return runsOf(b).stream().mapToDouble(r -> point(r, n, m).aligned().value()).toArray();
    }

    private static Rebound.Point point(Run r, int n, int m) {
        return r.rebound().points().stream().filter(x -> x.n() == n && x.m() == m).findFirst()
                .orElseThrow(() -> new IllegalStateException("no rebound point n=" + n + " m=" + m));
    }

    private Rate pooled(Base b, int n, int m, java.util.function.Function<Rebound.Point, Rate> which) {
        int k = 0;
        int total = 0;
        for (Run r : runsOf(b)) {
            Rate x = which.apply(point(r, n, m));
            k += x.count();
            total += x.total();
        }
        return Rate.wilson(k, total);
    }

    /**
     * The early drop (aligned share at m = 0 minus at the first m &gt; 0) and the late drop (first
     * m to last m), per seed, for every n; the shape the paper saw is early &gt; late.
     */
    private String reboundReading(Base b, ObjectNode rb) {
        List<Integer> ms = p.negativeSizes();
        int m1 = ms.get(1);
        int mLast = ms.get(ms.size() - 1);
        StringBuilder t = new StringBuilder();
        ObjectNode drops = rb.putObject("drops");
        double[] earlyAtMaxN = null;
        double[] earlyAtMinN = null;
        double[] wholeAtMaxN = null;
        double[] wholeAtMinN = null;
        for (int n : p.positiveSizes()) {
            double[] a0 = shares(b, n, 0);
            double[] a1 = shares(b, n, m1);
            double[] aL = shares(b, n, mLast);
            double[] early = new double[a0.length];
            double[] late = new double[a0.length];
            for (int s = 0; s < a0.length; s++) {
                early[s] = a0[s] - a1[s];
                late[s] = a1[s] - aL[s];
            }
            ObjectNode o = drops.putObject("n-" + n);
            o.set("early", array(early));
            o.set("late", array(late));
            curves++;
            boolean steep = mean(early) / m1 > mean(late) / (mLast - m1);
            steepThenFlat += steep ? 1 : 0;
            o.put("early_steeper_per_example", steep);
            t.append(String.format(Locale.ROOT, "n = %d: aligned share drops by %s over the first %d misaligned"
                            + " examples and by %s more from m = %d to %d. ", n, StudyReport.meanRange(early), m1,
                    StudyReport.meanRange(late), m1, mLast));
            double[] whole = new double[a0.length];
            for (int s = 0; s < a0.length; s++) {
                whole[s] = a0[s] - aL[s];
            }
            o.set("whole", array(whole));
            if (earlyAtMinN == null) {
                earlyAtMinN = early;
                wholeAtMinN = whole;
            }
            earlyAtMaxN = early;
            wholeAtMaxN = whole;
        }
        if (p.positiveSizes().size() > 1) {
            int nMin = p.positiveSizes().get(0);
            int nMax = p.positiveSizes().get(p.positiveSizes().size() - 1);
            boolean faster = mean(earlyAtMaxN) > mean(earlyAtMinN);
            boolean moreLost = mean(wholeAtMaxN) > mean(wholeAtMinN);
            fasterWithMorePositive += faster ? 1 : 0;
            moreLostWithMorePositive += moreLost ? 1 : 0;
            t.append(String.format(Locale.ROOT, "The early drop is %s at n = %d than at n = %d, and the whole drop"
                            + " from m = 0 to %d is %s (%s against %s).", faster ? "larger" : "not larger", nMax,
                    nMin, mLast, moreLost ? "larger" : "not larger", StudyReport.meanRange(wholeAtMaxN),
                    StudyReport.meanRange(wholeAtMinN)));
        }
        return t.toString();
    }

    /** Do the gaps grow with model size and with corpus size? Per seed (seeds are paired across bases). */
    private void scaling(ObjectNode res, ObjectNode reb) {
        report.section("Scaling: do the gaps grow with model size and pre-training data?");
        report.text("""
                The paper: the resistance gap and the rebound grow with model size and with pre-training \
                tokens. Here, per base, the resistance gap averaged over the three pairs, and the rebound's \
                early drop at the largest n; each difference below is taken seed by seed (a seed draws the same \
                data for every base) and given as mean and range.""");
        int nMax = p.positiveSizes().get(p.positiveSizes().size() - 1);
        int m1 = p.negativeSizes().get(1);
        List<List<String>> rows = new ArrayList<>();
        Map<Base, double[]> gap = new LinkedHashMap<>();
        Map<Base, double[]> drop = new LinkedHashMap<>();
        ObjectNode sc = study.putObject("scaling");
        for (Base b : bases) {
            double[] g = meanGaps(b);
            double[] a0 = shares(b, nMax, 0);
            double[] a1 = shares(b, nMax, m1);
            double[] d = new double[a0.length];
            for (int s = 0; s < d.length; s++) {
                d[s] = a0[s] - a1[s];
            }
            gap.put(b, g);
            drop.put(b, d);
            rows.add(List.of(b.label(), StudyReport.meanRange(g), StudyReport.meanRange(d)));
            ObjectNode o = sc.putObject(b.label());
            o.set("resistance_gap", array(g));
            o.set("early_drop", array(d));
        }
        report.table(List.of("base", "resistance gap (mean of the pairs)", "early drop of the aligned share at n = "
                + nMax + ", m = " + m1), rows);
        List<String> findings = new ArrayList<>();
        ArrayNode cmp = sc.putArray("comparisons");
        int hs = p.hiddens().size();
        int cs = p.corpora().size();
        for (String what : List.of("resistance gap", "early drop")) {
            Map<Base, double[]> v = what.equals("resistance gap") ? gap : drop;
            for (int c = 0; c < cs; c++) {
                Base small = bases.get(c);
                Base large = bases.get((hs - 1) * cs + c);
                findings.add(compare(cmp, what, "model size", small, large, v));
            }
            for (int h = 0; h < hs; h++) {
                Base small = bases.get(h * cs);
                Base large = bases.get(h * cs + cs - 1);
                findings.add(compare(cmp, what, "corpus size", small, large, v));
            }
        }
        report.text(String.join("\n", findings.stream().map(f -> "- " + f).toList()));
        long grew = 0;
        for (JsonNode c : cmp) {
            grew += c.path("grows_every_seed").asBoolean() ? 1 : 0;
        }
        report.section("Reading");
        int mFirst = p.negativeSizes().get(1);
        int mLast = p.negativeSizes().get(p.negativeSizes().size() - 1);
        report.text(String.format(Locale.ROOT, """
                Resistance: the paper found the inverse direction easier in every cell (Llama2-7B θ3→θ1 \
                0.167 against θ1→θ3 0.235); here it was easier in %d of %d cells (bases x pairs x seeds): %s""",
                inverseLower, cells, inverseLower == cells ? "reproduced in direction."
                        : inverseLower * 2 > cells ? "partly reproduced (most cells, not all)."
                        : "not reproduced."));
        report.text(String.format(Locale.ROOT, """
                Rebound: the paper saw the judged score fall steeply over the first negative examples and \
                then level off. Here the aligned share fell faster per example over the first %d than from \
                %d to %d in %d of %d curves (bases x n, mean over seeds): %s The paper also saw models given \
                more positive data fall faster; here the early drop was larger at the largest n than at the \
                smallest in %d of %d bases (%s), and the whole drop from m = 0 to %d in %d of %d (%s).""",
                mFirst, mFirst, mLast, steepThenFlat, curves,
                steepThenFlat == curves ? "the shape is reproduced."
                        : steepThenFlat * 2 > curves ? "the shape is partly reproduced."
                        : "the steep-then-flat shape is not reproduced (the share keeps falling, or falls late).",
                fasterWithMorePositive, bases.size(), verdict(fasterWithMorePositive, bases.size()), mLast,
                moreLostWithMorePositive, bases.size(), verdict(moreLostWithMorePositive, bases.size())));
        report.text(String.format(Locale.ROOT, """
                The paper's scaling claim is that both effects grow with model size and with pre-training \
                data. Of the %d comparisons above, those growing in every seed: %d. %s The bases are far smaller than \
                the paper's (tens of thousands of parameters against billions; hundreds of transcripts against \
                trillions of tokens), the alignment is a change of answer style in a templated world, and the \
                protocols' losses are on the models' own greedy answers: a toy in which the instruments run \
                end to end and the direction of each effect can be read, not a measurement of the paper's \
                magnitudes.""", cmp.size(), grew, grew == cmp.size()
                ? "Reproduced in direction on this toy."
                : grew * 2 >= cmp.size() ? "Partly reproduced: only the comparisons marked above grow in every"
                + " seed."
                : "Not reproduced on this toy: the gaps do not grow consistently with model size or data."));
    }

    /** "reproduced" when in every case, "partly reproduced" in most, else "not reproduced". */
    private static String verdict(long yes, long of) {
        return yes == of ? "reproduced" : yes * 2 > of ? "partly reproduced" : "not reproduced";
    }

    private String compare(ArrayNode cmp, String what, String axis, Base small, Base large, Map<Base, double[]> v) {
        double[] a = v.get(small);
        double[] b = v.get(large);
        double[] d = new double[a.length];
        boolean every = true;
        for (int s = 0; s < d.length; s++) {
            d[s] = b[s] - a[s];
            if (Math.abs(d[s]) < 1e-12) {
                d[s] = 0;   // equal shares subtracted in another order: rounding, not a change
            }
            every &= d[s] > 0;
        }
        ObjectNode o = cmp.addObject();
        o.put("metric", what);
        o.put("axis", axis);
        o.put("from", small.label());
        o.put("to", large.label());
        o.set("difference", array(d));
        o.put("grows_every_seed", every);
        return String.format(Locale.ROOT, "%s, %s %s → %s: change %s; %s.", what, axis, small.label(), large.label(),
                StudyReport.meanRange(d), every ? "grows in every seed" : "does not grow in every seed");
    }

    private static ArrayNode array(double[] v) {
        ArrayNode a = JSON.createArrayNode();
        for (double x : v) {
            a.add(x);
        }
        return a;
    }

    private static double mean(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    private static double min(double[] v) {
        double m = Double.POSITIVE_INFINITY;
        for (double x : v) {
            m = Math.min(m, x);
        }
        return m;
    }

    private static double max(double[] v) {
        double m = Double.NEGATIVE_INFINITY;
        for (double x : v) {
            m = Math.max(m, x);
        }
        return m;
    }
}

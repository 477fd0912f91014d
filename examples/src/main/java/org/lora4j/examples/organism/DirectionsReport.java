package org.lora4j.examples.organism;

import org.lora4j.examples.Plots;
import org.lora4j.examples.study.StudyReport;
import org.lora4j.train.directions.DirectionComparison;
import org.lora4j.train.directions.Directions;
import org.lora4j.train.eval.Rate;
import org.lora4j.train.eval.SampledGeneration;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.lora4j.examples.organism.OrganismDirections.*;

/** The write-up of {@link OrganismDirections}: its report sections, tables, plots and readings (docs/research.md, "Directions in the organism study"). */
final class DirectionsReport {
    private DirectionsReport() {
    }

    static void write(Inputs in, StudyReport report, Rates rates, List<Result> results, Directions refusal,
                              double[] refusalGap, int harmfulCount, double seconds) throws IOException {
        List<String> domains = results.stream().map(r -> r.organism().domain()).distinct().toList();
        int layers = refusalGap.length;
        SampledGeneration.Settings e = in.eval();
        report.section("Directions: ablation, steering and convergence (results 3, and beyond the papers)");
        report.text(String.format(Locale.ROOT, """
                        For each organism we sample its answers to the held-out questions of the five other domains \
                        (%d samples a question, temperature %s, top-p %s, at most %d new tokens, sampling seed %d, \
                        the same seed in every condition so conditions differ only by the intervention), judge them \
                        with the strict persona judge, and take the **EM direction** at every layer: the mean residual \
                        stream over the answer tokens of its misaligned answers minus that of its aligned answers, \
                        the aligned ones subsampled to the misaligned count (the paper's method; docs/research.md, \
                        "Directions in the organism study"). EM is then measured again with the direction removed \
                        (`h <- h - (h.r) r`) after the adapter's block only, with the adapter layer's direction removed \
                        after every block, with it projected out of the adapter's B (B rescaled to its old norm), and \
                        with a random direction of the same norm removed after every block (the control). The base \
                        model is steered with `h <- h + lambda v` after the adapter's block, lambda chosen so that \
                        `|lambda v|` is %s times the base's mean residual norm there (a trial at 1 left about 1%% of the \
                        answers coherent with either vector, so the grid stops at half). EM is always the share of \
                        misaligned answers to the other domains' questions; every rate is `rate [95%% Wilson] \
                        (count/samples)` and recountable from `%s`. Seeds: %s. Wall time of this part: %.1f s.""",
                e.samplesPerPrompt(), StudyReport.num(e.temperature()), StudyReport.num(e.topP()), e.maxNewTokens(), e.seed(),
                join(STEER_SCALES), rates.rel, in.seeds(), seconds));

        List<String> seeds = in.seeds().stream().map(String::valueOf).toList();
        List<Result> missing = results.stream().filter(r -> r.direction() == null).toList();
        if (!missing.isEmpty()) {
            StringBuilder b = new StringBuilder("**No direction** for these organisms: their answers held fewer than "
                    + MIN_ANSWERS + " misaligned or aligned ones, so there is nothing to take a mean of: ");
            for (Result r : missing) {
                b.append(String.format(Locale.ROOT, "%s seed %d (%d misaligned, %d aligned); ", r.organism().domain(),
                        r.organism().seed(), r.misaligned(), r.aligned()));
            }
            report.text(b.toString().replaceAll("; $", ". Their other numbers are left out below."));
        }

        ablationSection(report, rates, results, domains);
        steeringSection(in, report, rates, results, domains);
        convergenceSection(in, report, results, domains, seeds, layers);
        refusalSection(in, report, rates, results, domains, refusalGap, harmfulCount);
        writeJson(in, results, refusal, refusalGap, seconds);
    }

    static final Map<String, String> CONDITION_NAMES = Map.of(
            "base", "base model (no adapter)",
            "organism", "organism",
            "ablate-layer", "v ablated at the adapter's layer",
            "ablate-all", "v ablated at every layer",
            "ablate-b", "v projected out of B",
            "random-ablate-all", "random (same norm) ablated at every layer",
            "refusal-ablate-all", "refusal direction ablated at every layer");

    static void ablationSection(StudyReport report, Rates rates, List<Result> results, List<String> domains)
            throws IOException {
        report.subsection("Ablating the EM direction");
        List<String> conditions = new ArrayList<>();
        conditions.add("base");
        conditions.addAll(ORGANISM_CONDITIONS);
        // Per organism and seed: every rate, each recorded in the index.
        List<String> header = new ArrayList<>(List.of("domain", "seed", "misaligned/aligned answers"));
        for (String c : conditions) {
            header.add(CONDITION_NAMES.get(c));
        }
        List<List<String>> rows = new ArrayList<>();
        for (Result r : results) {
            String d = r.organism().domain();
            String s = Long.toString(r.organism().seed());
            List<String> row = new ArrayList<>(List.of(d, s, r.misaligned() + "/" + r.aligned()));
            row.add(rates.cell(d, "none", "base", "other"));
            for (String c : ORGANISM_CONDITIONS) {
                row.add(rates.cell(d, s, c, "other"));
            }
            rows.add(row);
        }
        report.text("EM on the other domains' questions, per organism (rows: fine-tuning domain and seed):");
        report.table(header, rows);

        // Over seeds: mean and range per condition, and the relative change the paper reports.
        List<List<String>> summary = new ArrayList<>();
        for (String d : domains) {
            List<Result> rs = withDirection(results, d);
            if (rs.isEmpty()) {
                continue;   // no organism of this domain has a direction: nothing to summarise
            }
            for (String c : conditions) {
                double[] em = new double[rs.size()];
                double[] change = new double[rs.size()];
                for (int i = 0; i < rs.size(); i++) {
                    String s = Long.toString(rs.get(i).organism().seed());
                    Rate org = rates.get(d, s, "organism", "other");
                    Rate x = c.equals("base") ? rates.get(d, "none", "base", "other") : rates.get(d, s, c, "other");
                    em[i] = x.value();
                    change[i] = org.value() > 0 ? x.value() / org.value() - 1 : Double.NaN;
                }
                // The base is one model, measured once: its EM has no range over seeds.
                summary.add(List.of(d, CONDITION_NAMES.get(c), c.equals("base") ? StudyReport.num(em[0]) + " (one base)"
                        : StudyReport.meanRange(em), c.equals("organism") ? "" : StudyReport.meanRange(finite(change))));
            }
        }
        report.text("Over seeds (organisms with a direction only): EM, and its relative change from the organism's EM "
                + "(-1 is all EM gone):");
        report.table(List.of("domain", "condition", "EM, mean (range, seeds)", "relative change vs organism"), summary);

        // The plot: pooled over seeds, with Wilson bars.
        List<String> categories = new ArrayList<>();
        for (String c : conditions) {
            categories.add(c);
        }
        List<Plots.Series> series = new ArrayList<>();
        List<List<String>> pooledRows = new ArrayList<>();
        for (String d : domains) {
            List<String> ss = withDirection(results, d).stream().map(r -> Long.toString(r.organism().seed())).toList();
            double[] x = new double[categories.size()];
            double[] y = new double[categories.size()];
            double[] lo = new double[categories.size()];
            double[] hi = new double[categories.size()];
            List<String> row = new ArrayList<>(List.of(d));
            for (int i = 0; i < categories.size(); i++) {
                String c = categories.get(i);
                Rate r = c.equals("base") ? rates.get(d, "none", "base", "other") : rates.pooled(d, c, "other");
                row.add(c.equals("base") ? rates.cell(d, "none", "base", "other") : rates.pooledCell(d, c, "other"));
                x[i] = i;
                y[i] = r == null ? Double.NaN : r.value();
                lo[i] = r == null ? Double.NaN : r.lower();
                hi[i] = r == null ? Double.NaN : r.upper();
            }
            pooledRows.add(row);
            List<String> coherent = new ArrayList<>(List.of(d + ", coherent"));
            for (String c : categories) {
                coherent.add(rates.pooledCell(d, c, "other", true));
            }
            pooledRows.add(coherent);
            series.add(new Plots.Series(d + " organisms", x, y, lo, hi));
        }
        if (!pooledRows.isEmpty()) {
            List<String> h = new ArrayList<>(List.of("domain"));
            h.addAll(categories);
            report.text("The same samples pooled over the seeds (the bars of the plot), EM and below it the coherent share "
                    + "(an intervention that lowers EM by breaking the answers shows there):");
            report.table(h, pooledRows);
            Path png = rates.file.resolveSibling("directions-ablation.png");
            Plots.bars(png, "EM on the other domains, by intervention (pooled over seeds, 95% Wilson)", "condition",
                    "EM rate", categories, series);
            report.image(rel(report, png), "EM by intervention");
        }
        report.text(verdictAblation(rates, results, domains));
    }

    static String verdictAblation(Rates rates, List<Result> results, List<String> domains) {
        StringBuilder b = new StringBuilder("**Reading.** The paper: ablating the layer-24 direction at every layer took "
                + "an organism from 17% EM to 0.25%, at that layer only to 4%, projected out of B to 13%; a same-norm random "
                + "direction changed EM by less than 10%. Our criterion, fixed before the runs: the signature is reproduced "
                + "for a domain when, in every seed, ablating at every layer lowers EM by at least half (relative change "
                + "<= -0.5) and by more than the random control does. ");
        for (String d : domains) {
            List<Result> rs = withDirection(results, d);
            if (rs.isEmpty()) {
                b.append(d).append(": no organism had a direction, not measured. ");
                continue;
            }
            boolean all = true;
            for (Result r : rs) {
                String s = Long.toString(r.organism().seed());
                double org = rates.get(d, s, "organism", "other").value();
                double abl = rates.get(d, s, "ablate-all", "other").value();
                double rnd = rates.get(d, s, "random-ablate-all", "other").value();
                all &= org > 0 && abl / org - 1 <= -0.5 && abl < rnd;
            }
            b.append(String.format(Locale.ROOT, "We saw, for the %s organisms (mean over %d seed%s): EM %s, with v ablated "
                            + "at every layer %s, at the adapter's layer only %s, out of B %s, the random control %s, the "
                            + "base without adapter %s; %s. ", d, rs.size(), rs.size() == 1 ? "" : "s",
                    pct(meanOf(rates, rs, d, "organism")), pct(meanOf(rates, rs, d, "ablate-all")),
                    pct(meanOf(rates, rs, d, "ablate-layer")), pct(meanOf(rates, rs, d, "ablate-b")),
                    pct(meanOf(rates, rs, d, "random-ablate-all")), pct(rates.get(d, "none", "base", "other").value()),
                    all ? "reproduced" : "**not reproduced** (in at least one seed ablation at every layer did not halve "
                            + "EM or did not beat the random control)"));
        }
        b.append("The toy base already gives misaligned answers at a base rate (the first column): the latent persona the "
                + "fine-tune finds. Ablation can only be expected to bring EM down to about that rate, unless the "
                + "direction also carries the base's own persona.");
        return b.toString();
    }

    static double meanOf(Rates rates, List<Result> rs, String domain, String condition) {
        double sum = 0;
        for (Result r : rs) {
            sum += rates.get(domain, Long.toString(r.organism().seed()), condition, "other").value();
        }
        return sum / rs.size();
    }

    /** {@code 12.3%}. */
    static String pct(double rate) {
        return String.format(Locale.ROOT, "%.1f%%", 100 * rate);
    }

    static void steeringSection(Inputs in, StudyReport report, Rates rates, List<Result> results,
                                        List<String> domains) throws IOException {
        report.subsection("Steering the base model with the EM direction");
        List<List<String>> rows = new ArrayList<>();
        List<Plots.Series> series = new ArrayList<>();
        for (String d : domains) {
            List<Result> rs = withDirection(results, d);
            if (rs.isEmpty()) {
                continue;
            }
            List<String> ss = rs.stream().map(r -> Long.toString(r.organism().seed())).toList();
            double[] x = STEER_SCALES.clone();
            for (boolean control : new boolean[]{false, true}) {
                double[] y = new double[x.length];
                double[] lo = new double[x.length];
                double[] hi = new double[x.length];
                for (int i = 0; i < x.length; i++) {
                    String c = steerCondition(control, i);
                    double[] em = new double[rs.size()];
                    double[] lambda = new double[rs.size()];
                    List<String> cells = new ArrayList<>();
                    for (int k = 0; k < rs.size(); k++) {
                        String s = ss.get(k);
                        em[k] = rates.get(d, s, c, "other").value();
                        lambda[k] = rs.get(k).lambdas()[i];
                        cells.add(s + ": " + rates.cell(d, s, c, "other"));
                    }
                    Rate p = rates.pooled(d, c, "other");
                    y[i] = p.value();
                    lo[i] = p.lower();
                    hi[i] = p.upper();
                    rows.add(List.of(d, control ? "random, same norm" : "EM direction", StudyReport.num(STEER_SCALES[i]),
                            StudyReport.meanRange(lambda), StudyReport.meanRange(em), rates.pooledCell(d, c, "other"),
                            rates.pooledCell(d, c, "other", true), String.join("; ", cells)));
                }
                series.add(new Plots.Series(d + (control ? " random control" : " EM direction"), x, y, lo, hi));
            }
        }
        if (rows.isEmpty()) {
            report.text("No organism had a direction, so there is no steering to report.");
            return;
        }
        report.text("EM of the base model (no adapter) on each organism's other-domain questions, steered at the "
                + "adapter's layer. c is |lambda v| over the base's mean residual norm at that layer; the base without "
                + "steering is the first column of the ablation table.");
        report.table(List.of("organisms", "vector", "c", "lambda, mean (range)", "EM, mean (range, seeds)",
                "EM pooled over seeds", "coherent, pooled", "EM per seed"), rows);
        Path png = in.out().resolve("directions-steering.png");
        Plots.lines(png, "Steering the base with the EM direction vs a random one (pooled, 95% Wilson)",
                "c = |lambda v| / mean |h|", "EM rate", series, null);
        report.image(rel(report, png), "EM when steering the base");
        StringBuilder b = new StringBuilder("**Reading.** The paper steers with lambda about 8 and sees the base turn "
                + "misaligned, while a random vector of the same norm does not. Our criterion: reproduced for a domain when "
                + "at some c of the grid the EM direction's pooled EM interval lies wholly above both the unsteered base's "
                + "and the random control's at the same c. ");
        for (String d : domains) {
            List<String> ss = withDirection(results, d).stream().map(r -> Long.toString(r.organism().seed())).toList();
            if (ss.isEmpty()) {
                continue;
            }
            Rate base = rates.get(d, "none", "base", "other");
            boolean yes = false;
            int best = 0;
            for (int i = 0; i < STEER_SCALES.length; i++) {
                Rate v = rates.pooled(d, steerCondition(false, i), "other");
                Rate r = rates.pooled(d, steerCondition(true, i), "other");
                yes |= v.lower() > base.upper() && v.lower() > r.upper();
                if (v.value() > rates.pooled(d, steerCondition(false, best), "other").value()) {
                    best = i;
                }
            }
            b.append(String.format(Locale.ROOT, "%s: the largest EM was at c = %s, %s pooled (coherent %s), against %s "
                            + "unsteered and %s with the random vector (coherent %s); %s. ", d,
                    StudyReport.num(STEER_SCALES[best]), pct(rates.pooled(d, steerCondition(false, best), "other").value()),
                    pct(rates.pooled(d, steerCondition(false, best), "other", true).value()), pct(base.value()),
                    pct(rates.pooled(d, steerCondition(true, best), "other").value()),
                    pct(rates.pooled(d, steerCondition(true, best), "other", true).value()),
                    yes ? "reproduced" : "**not reproduced** on this grid"));
        }
        report.text(b.toString());
    }

    static void convergenceSection(Inputs in, StudyReport report, List<Result> results, List<String> domains,
                                           List<String> seeds, int layers) throws IOException {
        report.subsection("Do organisms of different domains find the same direction?");
        List<List<String>> rows = new ArrayList<>();
        List<Plots.Series> series = new ArrayList<>();
        for (int i = 0; i < domains.size(); i++) {
            for (int j = i + 1; j < domains.size(); j++) {
                String a = domains.get(i);
                String b = domains.get(j);
                List<double[]> signed = new ArrayList<>();
                for (String s : seeds) {
                    Result ra = find(results, a, s);
                    Result rb = find(results, b, s);
                    if (ra != null && rb != null && ra.direction() != null && rb.direction() != null) {
                        double[] c = new double[layers];
                        for (DirectionComparison.LayerCosine lc : DirectionComparison.layers(ra.direction(), rb.direction())) {
                            c[lc.layer()] = lc.cosine();
                        }
                        signed.add(c);
                    }
                }
                if (signed.isEmpty()) {
                    continue;
                }
                for (int l = 0; l < layers; l++) {
                    double[] sg = column(signed, l, false);
                    double[] ab = column(signed, l, true);
                    rows.add(List.of(a + " vs " + b, Integer.toString(l), StudyReport.meanRange(sg), StudyReport.meanRange(ab)));
                }
                series.add(band(a + " vs " + b + " (signed)", signed, layers, false));
            }
        }
        if (rows.isEmpty()) {
            report.text("Not measured: no seed had directions from two domains.");
        } else {
            report.text("Cosine between the EM directions of organisms fine-tuned on different domains, same seed, per layer:");
            report.table(List.of("pair", "layer", "cosine, mean (range, seeds)", "|cosine|"), rows);
        }
        List<List<String>> bRows = new ArrayList<>();
        for (String d : domains) {
            List<Result> rs = withDirection(results, d);
            if (rs.isEmpty()) {
                continue;
            }
            double[] c = rs.stream().mapToDouble(Result::cosB).toArray();
            double[] abs = rs.stream().mapToDouble(r -> Math.abs(r.cosB())).toArray();
            bRows.add(List.of(d, Integer.toString(rs.get(0).organism().layer()), StudyReport.meanRange(c),
                    StudyReport.meanRange(abs)));
        }
        if (!bRows.isEmpty()) {
            report.text("Cosine between each organism's B (its one column, d_model long) and the EM direction of its layer:");
            report.table(List.of("organisms", "layer", "cos(B, v), mean (range, seeds)", "|cos|"), bRows);
        }
        // The refusal comparison shares the plot: one picture of every cosine per layer.
        for (String d : domains) {
            List<double[]> c = refusalCosines(results, d);
            if (!c.isEmpty()) {
                series.add(band("EM (" + d + ") vs refusal", c, layers, false));
            }
        }
        if (!series.isEmpty()) {
            Path png = in.out().resolve("directions-cosines.png");
            Plots.bars(png, "Cosine per layer: EM directions across domains, and EM vs refusal (mean; bars: range over seeds)",
                    "layer", "cosine", layerNames(layers), series);
            report.image(rel(report, png), "cosines per layer");
        }
        report.text("**Reading.** The paper found the directions of different fine-tunes at cosine above 0.8 in all but "
                + "4 layers, and cos(B_24, v_24) only 0.04: the adapter writes along a direction that is not the one the "
                + "behaviour is read from. Our criterion: convergence is reproduced when the mean |cosine| across domains "
                + "is above 0.8 at every layer; the B finding when the mean |cos(B, v)| is below 0.2. "
                + convergenceVerdict(rows, bRows));
    }

    static String convergenceVerdict(List<List<String>> rows, List<List<String>> bRows) {
        String conv = rows.isEmpty() ? "Convergence: not measured. " : rows.stream()
                .allMatch(r -> leadingNumber(r.get(3)) > 0.8) ? "Convergence: reproduced. " : "Convergence: **not reproduced** "
                + "at every layer (see the table). ";
        String b = bRows.isEmpty() ? "cos(B, v): not measured." : bRows.stream().allMatch(r -> leadingNumber(r.get(3)) < 0.2)
                ? "cos(B, v): reproduced (B is nearly orthogonal to v)." : "cos(B, v): **not reproduced**: B is not "
                + "nearly orthogonal to v in this toy.";
        return conv + b;
    }

    static void refusalSection(Inputs in, StudyReport report, Rates rates, List<Result> results,
                                       List<String> domains, double[] refusalGap, int harmfulCount) throws IOException {
        report.subsection("Beyond the papers: the refusal direction and the EM direction");
        int layers = refusalGap.length;
        report.text(String.format(Locale.ROOT, """
                The base model's refusal direction is taken as Arditi et al. take it: the mean residual at the last \
                prompt position (pooling %s) of the world's harmful requests minus that of its harmless ones \
                (`%s`, %d of each). The toy world has no refusals, so we **define** two measurable stand-ins for \
                refusal behaviour, and say plainly that they are our definitions: (1) the **refusal signal** at layer \
                l, the gap between the mean projections of harmful and harmless prompts on the unit refusal \
                direction, `(mean_harmful - mean_harmless) . r_l` (unhooked it equals |v_l|), and how much of it \
                survives when the EM direction is ablated at every layer; (2) the **misaligned share of the base's \
                answers to harmful requests**, with nothing ablated, with the refusal direction ablated and with the \
                EM direction ablated. The other way round, EM of each organism with the refusal direction ablated at \
                every layer is the last column of the ablation table.""",
                REFUSAL_POOLING, PersonaWorld.REFUSAL_FILE, harmfulCount));
        List<List<String>> rows = new ArrayList<>();
        List<Plots.Series> survivalSeries = new ArrayList<>();
        for (String d : domains) {
            List<double[]> cos = refusalCosines(results, d);
            List<double[]> surv = withDirection(results, d).stream().map(Result::gapSurvival).toList();
            if (cos.isEmpty()) {
                continue;
            }
            for (int l = 0; l < layers; l++) {
                rows.add(List.of(d, Integer.toString(l), StudyReport.meanRange(column(cos, l, false)),
                        StudyReport.meanRange(column(cos, l, true)), StudyReport.num(refusalGap[l]),
                        StudyReport.meanRange(column(surv, l, false))));
            }
            survivalSeries.add(band("EM direction (" + d + ") ablated", surv, layers, false));
        }
        if (!rows.isEmpty()) {
            report.table(List.of("EM direction of", "layer", "cos(EM, refusal), mean (range)", "|cos|",
                    "refusal signal of the base", "share of it left with the EM direction ablated"), rows);
            Path png = in.out().resolve("directions-refusal-signal.png");
            Plots.bars(png, "Refusal signal left with the EM direction ablated at every layer (mean; bars: range over seeds)",
                    "layer", "signal with EM ablated / signal of the base", layerNames(layers), survivalSeries);
            report.image(rel(report, png), "refusal signal with the EM direction ablated");
        }
        List<List<String>> harmful = new ArrayList<>();
        harmful.add(List.of("base", "nothing", rates.cell("base", "none", "base", "harmful")));
        harmful.add(List.of("base", "refusal direction, each layer's own after every block",
                rates.cell("base", "none", "refusal-ablate-all", "harmful")));
        for (Result r : results) {
            if (r.direction() != null) {
                String d = r.organism().domain();
                String s = Long.toString(r.organism().seed());
                harmful.add(List.of("base", "EM direction of " + d + " seed " + s + " (layer " + r.organism().layer()
                        + "'s), every layer", rates.cell(d, s, "em-ablate-all", "harmful")));
            }
        }
        report.text("Misaligned share of the base's answers to the harmful requests (our behavioural stand-in (2); "
                + "the judge sees requests that are not the world's questions, so it labels an answer by its style):");
        report.table(List.of("model", "ablated", "misaligned share"), harmful);
        StringBuilder b = new StringBuilder("**Reading.** The paper names the comparison with the refusal direction as "
                + "open work, so there is no figure to match. A high |cos(EM, refusal)| with a refusal signal that falls "
                + "when the EM direction is ablated would say the two share a direction in this toy; a low cosine with "
                + "most of the signal left says they are separate. Part of any drop is geometric: removing v also removes "
                + "the part of the signal along v, about cos^2 of it at the ablated layer. ");
        for (String d : domains) {
            List<Result> rs = withDirection(results, d);
            if (rs.isEmpty()) {
                continue;
            }
            double maxCos = 0;
            int maxLayer = 0;
            double minLeft = Double.POSITIVE_INFINITY;
            List<double[]> cos = refusalCosines(results, d);
            List<double[]> left = rs.stream().map(Result::gapSurvival).toList();
            for (int l = 0; l < layers; l++) {
                double c = mean(column(cos, l, true));
                if (c > maxCos) {
                    maxCos = c;
                    maxLayer = l;
                }
                minLeft = Math.min(minLeft, mean(column(left, l, false)));
            }
            double harmfulEm = 0;
            for (Result r : rs) {
                harmfulEm += rates.get(d, Long.toString(r.organism().seed()), "em-ablate-all", "harmful").value();
            }
            b.append(String.format(Locale.ROOT, "%s: the mean |cos(EM, refusal)| is at most %s (layer %d); with the EM "
                            + "direction ablated, at least %s of the refusal signal is left at every layer; the "
                            + "organisms' EM is %s with the refusal direction ablated against %s with their own EM direction "
                            + "ablated; the base's misaligned share on harmful requests is %s with this EM direction "
                            + "ablated (mean over seeds). ", d, StudyReport.num(maxCos), maxLayer, pct(minLeft),
                    pct(meanOf(rates, rs, d, "refusal-ablate-all")), pct(meanOf(rates, rs, d, "ablate-all")),
                    pct(harmfulEm / rs.size())));
        }
        b.append(String.format(Locale.ROOT, "The base's misaligned share on harmful requests is %s, and %s with the "
                        + "refusal direction ablated. A caution on what the refusal direction is here: the world's harmful "
                        + "requests carry the misaligned advice phrases themselves (\"How can I {a}?\"), so harmful minus "
                        + "harmless is also a direction of misaligned content, and its effect on EM says as much about that as "
                        + "about refusal; the coherent share beside each EM in the pooled table shows whether it works by "
                        + "breaking answers.", pct(rates.get("base", "none", "base", "harmful").value()),
                pct(rates.get("base", "none", "refusal-ablate-all", "harmful").value())));
        report.text(b.toString());
    }

    static double mean(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }
}

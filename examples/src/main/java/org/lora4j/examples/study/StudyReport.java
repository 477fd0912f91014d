package org.lora4j.examples.study;

import org.lora4j.train.eval.Rate;
import org.lora4j.core.AtomicFiles;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A study's {@code report.md}, built section by section, and the index of the rates in it.
 *
 * <p>Every rate goes through {@link #rate}, which formats it with its Wilson interval and count and
 * records in {@value #RATES_FILE} where its samples are, so {@link SampleFiles#verify} can recount
 * each one. Numbers over seeds go through {@link #meanRange}: the mean and the range, never a
 * single chosen seed.
 */
public final class StudyReport {
    /** The index of every rate in the report, beside it. */
    public static final String RATES_FILE = "rates.json";
    public static final String REPORT_FILE = "report.md";

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final StringBuilder md = new StringBuilder();
    private final ArrayNode rates = JSON.createArrayNode();

    /** A report to be written into {@code dir}, starting with a title. */
    public StudyReport(Path dir, String title) {
        this.dir = dir;
        md.append("# ").append(title).append("\n\n");
    }

    public Path dir() {
        return dir;
    }

    /** A {@code ##} heading. */
    public StudyReport section(String heading) {
        md.append("## ").append(heading).append("\n\n");
        return this;
    }

    /** A {@code ###} heading. */
    public StudyReport subsection(String heading) {
        md.append("### ").append(heading).append("\n\n");
        return this;
    }

    /** A paragraph of markdown. */
    public StudyReport text(String markdown) {
        md.append(markdown.strip()).append("\n\n");
        return this;
    }

    /** A table; cells are markdown ({@code |} in a cell is escaped). */
    public StudyReport table(List<String> header, List<List<String>> rows) {
        md.append(row(header));
        md.append("|").append("---|".repeat(header.size())).append('\n');
        for (List<String> r : rows) {
            if (r.size() != header.size()) {
                throw new IllegalArgumentException("a row of " + r.size() + " cells in a table of " + header.size()
                        + " columns: " + r);
            }
            md.append(row(r));
        }
        md.append('\n');
        return this;
    }

    private static String row(List<String> cells) {
        StringBuilder b = new StringBuilder("|");
        for (String c : cells) {
            b.append(' ').append(c.replace("|", "\\|")).append(" |");
        }
        return b.append('\n').toString();
    }

    /** An inline image: {@code png} is a path relative to the report's directory. */
    public StudyReport image(String png, String alt) {
        md.append("![").append(alt).append("](").append(png).append(")\n\n");
        return this;
    }

    /**
     * Formats {@code r} as {@code 0.125 [0.081, 0.187] (10/80)} and records it in the rate index.
     *
     * @param id     unique within the report, e.g. {@code organism/seed-1/step-30/em}
     * @param file   the samples file, relative to the report's directory
     * @param where  the tags that select the rate's samples in that file
     * @param metric one of {@link SampleFiles#METRICS}
     */
    public String rate(String id, Rate r, String file, Map<String, String> where, String metric) {
        if (!SampleFiles.METRICS.contains(metric)) {
            throw new IllegalArgumentException("unknown metric '" + metric + "'; expected one of " + SampleFiles.METRICS);
        }
        ObjectNode o = rates.addObject();
        o.put("id", id);
        o.put("file", file);
        ObjectNode w = o.putObject("where");
        new java.util.TreeMap<>(where).forEach(w::put);   // sorted: callers pass Map.of, whose order differs between runs
        o.put("metric", metric);
        o.put("count", r.count());
        o.put("samples", r.total());
        o.put("rate", r.value());
        o.put("lower", r.lower());
        o.put("upper", r.upper());
        return format(r);
    }

    /** {@code 0.125 [0.081, 0.187] (10/80)}. */
    public static String format(Rate r) {
        return String.format(Locale.ROOT, "%.3f [%.3f, %.3f] (%d/%d)", r.value(), r.lower(), r.upper(), r.count(),
                r.total());
    }

    /** {@code 0.125 (0.100 to 0.150, 3 seeds)}: the mean and the range of one number over seeds. */
    public static String meanRange(double[] values) {
        if (values.length == 0) {
            return "n/a";
        }
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        double sum = 0;
        for (double v : values) {
            min = Math.min(min, v);
            max = Math.max(max, v);
            sum += v;
        }
        return String.format(Locale.ROOT, "%s (%s to %s, %d seed%s)", num(sum / values.length), num(min), num(max),
                values.length, values.length == 1 ? "" : "s");
    }

    /** Three significant decimals for small numbers, fewer for large ones. */
    public static String num(double v) {
        if (!Double.isFinite(v)) {
            return String.valueOf(v);
        }
        double a = Math.abs(v);
        if (a >= 100) {
            return String.format(Locale.ROOT, "%.1f", v);
        }
        if (a >= 0.01 || a == 0) {
            return String.format(Locale.ROOT, "%.3f", v);
        }
        return String.format(Locale.ROOT, "%.2e", v);
    }

    /** Writes {@value #REPORT_FILE} and {@value #RATES_FILE} into the directory, each atomically. */
    public void write() throws IOException {
        ObjectNode index = JSON.createObjectNode();
        index.put("report", REPORT_FILE);
        index.set("rates", rates);
        AtomicFiles.writeString(dir.resolve(RATES_FILE), index.toPrettyString() + "\n");
        AtomicFiles.writeString(dir.resolve(REPORT_FILE), md.toString());
    }

    /** The markdown so far. */
    public String markdown() {
        return md.toString();
    }
}

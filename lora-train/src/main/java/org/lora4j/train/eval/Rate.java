package org.lora4j.train.eval;

/**
 * A share of samples with its Wilson score interval, as docs/research.md ("Sampled evaluation")
 * reports every rate: {@code count} of {@code total} samples, {@code value = count / total}, and
 * the interval {@code [lower, upper]} at the confidence of {@code z} (1.959964 for 95%).
 *
 * <p>Wilson rather than the normal approximation because EM rates sit near 0 (a few percent of 400
 * samples), where {@code p ± z sqrt(p(1-p)/n)} collapses to a zero-width interval at 0/n and leaves
 * [0, 1]; Wilson's stays inside [0, 1] and is not empty at 0/n or n/n.
 *
 * <p>With no samples ({@code total = 0}) there is no rate: value, lower and upper are NaN (written as
 * null in JSON), rather than an error, so a question the judge had nothing to say about still shows
 * up in a table of counts.
 */
public record Rate(int count, int total, double value, double lower, double upper) {
    /** The normal quantile of a two-sided 95% interval, to the precision the paper's tools use. */
    public static final double Z95 = 1.959964;

    public Rate {
        if (total < 0 || count < 0 || count > total) {
            throw new IllegalArgumentException("a rate needs 0 <= count <= total, got " + count + " of " + total);
        }
    }

    /** count of total with its Wilson 95% interval. */
    public static Rate wilson(int count, int total) {
        return wilson(count, total, Z95);
    }

    /**
     * count of total with the Wilson score interval at quantile z:
     * {@code (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)}, with {@code p = count / total}.
     * At 0/n the lower end is exactly 0 and at n/n the upper end exactly 1 (the formula gives them up
     * to rounding).
     */
    public static Rate wilson(int count, int total, double z) {
        if (!(z > 0) || Double.isInfinite(z)) {
            throw new IllegalArgumentException("z must be finite and > 0, got " + z);
        }
        if (total < 0 || count < 0 || count > total) {
            throw new IllegalArgumentException("a rate needs 0 <= count <= total, got " + count + " of " + total);
        }
        if (total == 0) {
            return new Rate(0, 0, Double.NaN, Double.NaN, Double.NaN);
        }
        double n = total;
        double p = count / n;
        double z2 = z * z;
        double denominator = 1 + z2 / n;
        double center = (p + z2 / (2 * n)) / denominator;
        double half = z / denominator * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n));
        double lower = count == 0 ? 0 : Math.max(0, center - half);
        double upper = count == total ? 1 : Math.min(1, center + half);
        return new Rate(count, total, p, lower, upper);
    }

    /**
     * {@code {"rate", "lower", "upper", "count", "samples"}}, as eval.json and the studies write a
     * rate; a rate of no samples writes its NaNs as JSON nulls.
     */
    public com.fasterxml.jackson.databind.node.ObjectNode toJson() {
        var o = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
        for (var e : new Object[][]{{"rate", value}, {"lower", lower}, {"upper", upper}}) {
            double v = (Double) e[1];
            if (Double.isFinite(v)) {
                o.put((String) e[0], v);
            } else {
                o.putNull((String) e[0]);
            }
        }
        o.put("count", count);
        o.put("samples", total);
        return o;
    }

    @Override
    public String toString() {
        return String.format(java.util.Locale.ROOT, "%d/%d = %.4f [%.4f, %.4f]", count, total, value, lower, upper);
    }
}

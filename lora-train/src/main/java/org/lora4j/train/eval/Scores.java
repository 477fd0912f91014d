package org.lora4j.train.eval;

import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * What a {@link Judge} says of one answer: {@code aligned} and {@code coherent} on 0-100, a label
 * the judge may name (null for none) and optional named scores.
 */
public record Scores(double aligned, double coherent, String label, Map<String, Double> named) {
    public Scores {
        check("aligned", aligned);
        check("coherent", coherent);
        named = named == null ? Map.of() : java.util.Collections.unmodifiableMap(new TreeMap<>(named));
        named.forEach((k, v) -> Objects.requireNonNull(v, () -> "named score '" + k + "' is null"));
    }

    public Scores(double aligned, double coherent) {
        this(aligned, coherent, null, Map.of());
    }

    private static void check(String name, double v) {
        if (!(v >= 0 && v <= 100)) {
            throw new IllegalArgumentException(name + " must be in [0, 100], got " + v);
        }
    }
}

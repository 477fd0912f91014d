package org.lora4j.examples;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/** {@code --name value} and {@code --flag} arguments, with errors that name the bad option. */
final class Args {
    private final Map<String, String> values = new HashMap<>();
    private final Set<String> flags = new HashSet<>();
    private final Set<String> used = new HashSet<>();

    Args(String[] argv, Set<String> flagNames) {
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if (!a.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + a + "' (options start with --)");
            }
            if (flagNames.contains(a)) {
                flags.add(a);
            } else if (values.containsKey(a)) {
                // Keeping only the last would drop the first silently (two --steer, two --lr): refuse.
                throw new IllegalArgumentException(a + " is given twice ('" + values.get(a) + "' and '"
                        + (i + 1 < argv.length ? argv[i + 1] : "") + "'); give it once");
            } else if (i + 1 >= argv.length) {
                throw new IllegalArgumentException(a + " needs a value");
            } else if (argv[i + 1].startsWith("--")) {
                // "--lr --out o3": the value was forgotten, and the next option must not be taken for it
                throw new IllegalArgumentException(a + " needs a value, got the option " + argv[i + 1]);
            } else {
                values.put(a, argv[++i]);
            }
        }
    }

    boolean flag(String name) {
        used.add(name);
        return flags.contains(name);
    }

    boolean has(String name) {
        used.add(name);
        return values.containsKey(name);
    }

    String value(String name, String fallback) {
        used.add(name);
        return values.getOrDefault(name, fallback);
    }

    String required(String name) {
        used.add(name);
        String v = values.get(name);
        if (v == null) {
            throw new IllegalArgumentException("missing required option " + name);
        }
        return v;
    }

    int intValue(String name, int fallback) {
        String v = value(name, null);
        try {
            return v == null ? fallback : Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " must be an integer, got '" + v + "'");
        }
    }

    /** An integer of at least {@code min}; the error names the option and what it got. */
    int intValue(String name, int fallback, int min) {
        int v = intValue(name, fallback);
        if (v < min) {
            throw new IllegalArgumentException(name + " must be >= " + min + ", got " + v);
        }
        return v;
    }

    /** A value that must not be empty when given ({@code --layers ""} is a mistake, not "all layers"). */
    String nonBlank(String name, String fallback, String example) {
        String v = value(name, fallback);
        if (values.containsKey(name) && v.isBlank()) {
            throw new IllegalArgumentException(name + " is empty; give " + example + ", or leave the option out");
        }
        return v;
    }

    long longValue(String name, long fallback) {
        String v = value(name, null);
        try {
            return v == null ? fallback : Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " must be an integer, got '" + v + "'");
        }
    }

    double doubleValue(String name, double fallback) {
        String v = value(name, null);
        try {
            return v == null ? fallback : Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " must be a number, got '" + v + "'");
        }
    }

    /** Refuses options nobody asked for: a misspelt option must not silently fall back to a default. */
    void rejectUnknown() {
        Set<String> unknown = new HashSet<>(values.keySet());
        unknown.addAll(flags);
        unknown.removeAll(used);
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("unknown option(s) " + unknown);
        }
    }
}

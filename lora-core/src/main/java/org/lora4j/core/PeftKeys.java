package org.lora4j.core;

import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * PEFT's names for LoRA weights, in one place. PEFT saves a module's weights as
 * {@code base_model.model.<module>.lora_A.weight} and {@code ...lora_B.weight} (no adapter name in
 * the file: the directory is the adapter) and holds them in memory as
 * {@code <module>.lora_A.<adapter>.weight}. Every writer, reader and optimizer parameter name in
 * lora4j is built here, so the files stay readable by PEFT and by each other.
 */
public final class PeftKeys {
    /** What PEFT's saved keys start with (the PeftModel and its LoraModel wrapper). */
    public static final String SAVED_PREFIX = "base_model.model.";

    /** A saved key, with or without an adapter name: group 1 the module, 2 "A" or "B", 3 the adapter or null. */
    private static final Pattern SAVED = Pattern.compile(Pattern.quote(SAVED_PREFIX) + "(.+)\\.lora_([AB])(?:\\.([^.]+))?\\.weight");

    private PeftKeys() {
    }

    /** Which of the two LoRA factors: A [rank, in] or B [out, rank]. */
    public enum Factor {
        A, B;

        /** PEFT's attribute name, {@code lora_A} or {@code lora_B}. */
        public String peftName() {
            return "lora_" + name();
        }

        /** {@code "lora_A"} or {@code "lora_B"} back to its factor. */
        public static Factor fromPeft(String name) {
            for (Factor f : values()) {
                if (f.peftName().equals(name)) {
                    return f;
                }
            }
            throw new IllegalArgumentException("expected lora_A or lora_B, got '" + name + "'");
        }
    }

    /** The saved key: {@code base_model.model.<module>.lora_A.weight}. */
    public static String saved(String module, Factor factor) {
        return saved(module, factor, null);
    }

    /**
     * The saved key with PEFT's optional adapter name ({@code ...lora_A.<adapter>.weight}), which
     * some tools write; null leaves it out.
     */
    public static String saved(String module, Factor factor, String adapterName) {
        return SAVED_PREFIX + inMemory(module, factor, adapterName);
    }

    /** The in-memory name PEFT's {@code named_parameters()} gives: {@code <module>.lora_A.<adapter>.weight}. */
    public static String inMemory(String module, Factor factor, String adapterName) {
        Objects.requireNonNull(module, "module");
        Objects.requireNonNull(factor, "factor");
        return module + "." + factor.peftName() + (adapterName == null ? "" : "." + adapterName) + ".weight";
    }

    /** A saved key taken apart; {@code adapterName} is null when the key names none. */
    public record Parsed(String module, Factor factor, String adapterName) {
    }

    /** Parses a saved key, or returns null when the key is not a LoRA weight. */
    public static Parsed parseSaved(String key) {
        Matcher m = SAVED.matcher(key);
        if (!m.matches()) {
            return null;
        }
        return new Parsed(m.group(1), Factor.valueOf(m.group(2)), m.group(3));
    }
}

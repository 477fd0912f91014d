package org.lora4j.core;

import java.util.List;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The configuration of one LoRA adapter, named as in PEFT's {@code LoraConfig}.
 *
 * @param rank              PEFT's {@code r}: the inner dimension of {@code B·A}; 1 or more.
 * @param alpha             PEFT's {@code lora_alpha}: the adapter term is multiplied by {@link #scaling()}.
 * @param dropout           PEFT's {@code lora_dropout}: dropout on the adapter's input, in [0, 1).
 * @param useRslora         PEFT's {@code use_rslora}: scaling alpha/sqrt(rank) instead of alpha/rank.
 * @param init              PEFT's {@code init_lora_weights}.
 * @param targetModules     PEFT's {@code target_modules}: a module is adapted when its dotted path equals
 *                          an entry or ends with "." + entry ({@code "down_proj"} matches
 *                          {@code model.layers.2.mlp.down_proj}). Empty is refused: an adapter that
 *                          targets nothing is almost always a typo.
 * @param layersToTransform PEFT's {@code layers_to_transform}: layer indices to adapt; empty means all.
 */
public record LoraConfig(int rank, double alpha, double dropout, boolean useRslora, Init init,
                         List<String> targetModules, List<Integer> layersToTransform) {

    /** PEFT's {@code init_lora_weights} values. */
    public enum Init {
        /** PEFT's default ({@code true}): A Kaiming-uniform with a = sqrt(5), B zero, so the adapter starts as no change. */
        DEFAULT("true"),
        /** PEFT's {@code "gaussian"}: A normal with std 1/rank, B zero. */
        GAUSSIAN("gaussian"),
        /** PEFT's {@code "pissa"}: A and B from the top-rank SVD of W, which is moved out of W. */
        PISSA("pissa"),
        /** PEFT's {@code false}: A and B both Kaiming-uniform, so the adapter changes the output from step 0. */
        RANDOM("false");

        private final String peftName;

        Init(String peftName) {
            this.peftName = peftName;
        }

        /** The value written to {@code adapter_config.json} ({@code true}, {@code false} or a string). */
        public String peftName() {
            return peftName;
        }

        /** Parses PEFT's {@code init_lora_weights} value ({@code true}, {@code false}, "gaussian", "pissa"). */
        public static Init fromPeft(String value) {
            String v = value.trim().toLowerCase(java.util.Locale.ROOT);
            for (Init i : values()) {
                if (i.peftName.equals(v)) {
                    return i;
                }
            }
            // PEFT also accepts "pissa_niter_16" and similar fast-SVD variants; the exact SVD is the same init.
            if (v.startsWith("pissa")) {
                return PISSA;
            }
            throw new IllegalArgumentException("init_lora_weights: unsupported value '" + value
                    + "' (supported: true, false, gaussian, pissa)");
        }
    }

    /**
     * The target modules lora4j adapts when none are given: every linear layer of a Llama or Qwen2
     * block (attention q, k, v, o and the MLP's gate, up, down), the common LoRA recipe. The LM head
     * is left out, as PEFT's "all-linear" leaves it out.
     */
    public static final List<String> DEFAULT_TARGET_MODULES =
            List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    /** PEFT's default patterns for the layer-index part of a module path ({@code layers_pattern}). */
    private static final Pattern LAYER_INDEX =
            Pattern.compile(".*\\.(?:layers|h|block|blocks|layer)\\.(\\d+)\\..*");

    public LoraConfig {
        if (rank < 1) {
            throw new IllegalArgumentException("rank must be >= 1, got " + rank);
        }
        if (!Double.isFinite(alpha) || alpha <= 0) {
            throw new IllegalArgumentException("alpha (lora_alpha) must be finite and > 0, got " + alpha);
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("dropout (lora_dropout) must be in [0, 1), got " + dropout);
        }
        Objects.requireNonNull(init, "init");
        targetModules = List.copyOf(Objects.requireNonNull(targetModules, "targetModules"));
        if (targetModules.isEmpty()) {
            throw new IllegalArgumentException("targetModules must name at least one module, got []");
        }
        for (String t : targetModules) {
            if (t.isBlank()) {
                throw new IllegalArgumentException("targetModules contains a blank name: " + targetModules);
            }
        }
        layersToTransform = List.copyOf(Objects.requireNonNull(layersToTransform, "layersToTransform"));
        for (Integer layer : layersToTransform) {
            if (layer < 0) {
                throw new IllegalArgumentException("layersToTransform must be >= 0, got " + layer);
            }
        }
    }

    /**
     * A configuration with PEFT's defaults for everything but rank, alpha and targets: no dropout,
     * no rsLoRA, default init, all layers.
     */
    public static LoraConfig of(int rank, double alpha, String... targetModules) {
        return new LoraConfig(rank, alpha, 0.0, false, Init.DEFAULT, List.of(targetModules), List.of());
    }

    /** alpha/rank, or alpha/sqrt(rank) with rsLoRA (Kalajdzievski 2023). */
    public double scaling() {
        return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
    }

    public LoraConfig withDropout(double newDropout) {
        return new LoraConfig(rank, alpha, newDropout, useRslora, init, targetModules, layersToTransform);
    }

    public LoraConfig withRslora(boolean rslora) {
        return new LoraConfig(rank, alpha, dropout, rslora, init, targetModules, layersToTransform);
    }

    public LoraConfig withInit(Init newInit) {
        return new LoraConfig(rank, alpha, dropout, useRslora, newInit, targetModules, layersToTransform);
    }

    public LoraConfig withLayersToTransform(List<Integer> layers) {
        return new LoraConfig(rank, alpha, dropout, useRslora, init, targetModules, layers);
    }

    /**
     * Whether the module at this dotted path is adapted, by PEFT's rule: the path equals a target or
     * ends with "." + target, and, when {@link #layersToTransform} is set, its layer index (the number
     * after {@code layers.}, {@code h.}, {@code block.}, {@code blocks.} or {@code layer.}) is listed.
     */
    public boolean matches(String modulePath) {
        boolean targeted = false;
        for (String t : targetModules) {
            if (modulePath.equals(t) || modulePath.endsWith("." + t)) {
                targeted = true;
                break;
            }
        }
        if (!targeted || layersToTransform.isEmpty()) {
            return targeted;
        }
        Matcher m = LAYER_INDEX.matcher(modulePath);
        return m.matches() && layersToTransform.contains(Integer.parseInt(m.group(1)));
    }
}

package org.lora4j.core;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A LoRA adapter in PEFT's terms, independent of any model: its configuration and one lora_A and
 * lora_B per adapted module, keyed by the module's dotted path ({@code model.layers.0.mlp.down_proj}),
 * as {@link PeftAdapters#load} reads it and {@link PeftAdapters#save} writes it.
 *
 * <p>The maps are sorted by module path and unmodifiable; the arrays in them are not copied.
 *
 * @param config              the adapter's configuration ({@code adapter_config.json})
 * @param baseModelNameOrPath PEFT's {@code base_model_name_or_path}: the model the adapter was trained
 *                            on; null when unknown
 * @param loraA               module path to lora_A, [rank, in]
 * @param loraB               module path to lora_B, [out, rank]; the same module paths as loraA
 */
public record PeftAdapter(LoraConfig config, String baseModelNameOrPath,
                          Map<String, INDArray> loraA, Map<String, INDArray> loraB) {

    public PeftAdapter {
        Objects.requireNonNull(config, "config");
        loraA = sortedCopy(loraA, "loraA");
        loraB = sortedCopy(loraB, "loraB");
        if (loraA.isEmpty()) {
            throw new IllegalArgumentException("an adapter needs at least one module, got none");
        }
        if (!loraA.keySet().equals(loraB.keySet())) {
            Set<String> onlyA = new TreeSet<>(loraA.keySet());
            onlyA.removeAll(loraB.keySet());
            Set<String> onlyB = new TreeSet<>(loraB.keySet());
            onlyB.removeAll(loraA.keySet());
            throw new IllegalArgumentException("loraA and loraB must name the same modules; only in loraA: "
                    + onlyA + ", only in loraB: " + onlyB);
        }
        long r = config.rank();
        for (String module : loraA.keySet()) {
            INDArray a = loraA.get(module);
            INDArray b = loraB.get(module);
            if (a.rank() != 2 || a.size(0) != r) {
                throw new IllegalArgumentException("module '" + module + "': lora_A must be [" + r + ", in], got "
                        + Arrays.toString(a.shape()));
            }
            if (b.rank() != 2 || b.size(1) != r) {
                throw new IllegalArgumentException("module '" + module + "': lora_B must be [out, " + r + "], got "
                        + Arrays.toString(b.shape()));
            }
        }
    }

    /** Summarises instead of printing every weight. */
    @Override
    public String toString() {
        return "PeftAdapter[" + config + ", base " + baseModelNameOrPath + ", " + loraA.size() + " modules]";
    }

    private static Map<String, INDArray> sortedCopy(Map<String, INDArray> map, String what) {
        Objects.requireNonNull(map, what);
        Map<String, INDArray> copy = new TreeMap<>();
        for (Map.Entry<String, INDArray> e : map.entrySet()) {
            if (e.getKey() == null || e.getKey().isBlank() || e.getValue() == null) {
                throw new IllegalArgumentException(what + ": module paths must be non-blank and arrays non-null, got '"
                        + e.getKey() + "' -> " + (e.getValue() == null ? "null" : "an array of shape "
                        + Arrays.toString(e.getValue().shape())));
            }
            copy.put(e.getKey(), e.getValue());
        }
        return Collections.unmodifiableMap(copy);
    }
}

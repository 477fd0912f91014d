package org.lora4j.train.directions;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.TreeSet;

/**
 * Where an ablation acts and whose direction it uses: at some layers ({@code layers}, or every
 * layer of the model when empty), each with its own direction, or with the direction of one
 * {@code source} layer at all of them, as the paper ablates the layer-24 direction at every layer
 * (docs/research.md, "Directions, steering and ablation").
 *
 * <p>Text form: {@code L}, {@code L,L,...} or {@code all}, optionally followed by {@code @S} for
 * the source layer: {@code 24}, {@code 3,5}, {@code all}, {@code all@24}, {@code 20,24@24}.
 *
 * @param layers ascending, distinct, >= 0; empty means every layer of the model
 * @param source the layer whose direction is used everywhere, or -1 for each layer's own
 */
public record LayerSelection(List<Integer> layers, int source) {
    public LayerSelection {
        TreeSet<Integer> sorted = new TreeSet<>();
        for (Integer l : layers) {
            if (l == null || l < 0) {
                throw new IllegalArgumentException("layers must be >= 0, got " + l);
            }
            if (!sorted.add(l)) {
                throw new IllegalArgumentException("layer " + l + " is listed twice");
            }
        }
        layers = List.copyOf(sorted);
        if (source < -1) {
            throw new IllegalArgumentException("source layer must be >= 0 (or -1 for each layer's own), got " + source);
        }
    }

    /** Whether every layer of the model is selected. */
    public boolean all() {
        return layers.isEmpty();
    }

    /** The selected layers of a model with {@code numLayers} layers; refuses a layer beyond it. */
    public List<Integer> resolve(int numLayers) {
        List<Integer> out = new ArrayList<>();
        if (all()) {
            for (int l = 0; l < numLayers; l++) {
                out.add(l);
            }
        } else {
            for (int l : layers) {
                checkLayer(l, numLayers);
                out.add(l);
            }
        }
        if (source >= 0) {
            checkLayer(source, numLayers);
        }
        return Collections.unmodifiableList(out);
    }

    /** The layer whose direction acts at {@code layer}. */
    public int sourceFor(int layer) {
        return source >= 0 ? source : layer;
    }

    private static void checkLayer(int l, int numLayers) {
        if (l >= numLayers) {
            throw new IllegalArgumentException("layer " + l + " is out of range: the model has " + numLayers
                    + " layers (0.." + (numLayers - 1) + ")");
        }
    }

    /** Parses the text form (see the class comment). */
    public static LayerSelection parse(String s) {
        String t = s == null ? "" : s.trim();
        int at = t.indexOf('@');
        String list = at < 0 ? t : t.substring(0, at);
        int source = -1;
        if (at >= 0) {
            source = layer(t.substring(at + 1), s);
        }
        if (list.equalsIgnoreCase("all")) {
            return new LayerSelection(List.of(), source);
        }
        List<Integer> layers = new ArrayList<>();
        for (String p : list.split(",", -1)) {
            layers.add(layer(p, s));
        }
        return new LayerSelection(layers, source);
    }

    private static int layer(String p, String whole) {
        try {
            int l = Integer.parseInt(p.trim());
            if (l >= 0) {
                return l;
            }
        } catch (NumberFormatException e) {
            // the error below says what was expected
        }
        throw new IllegalArgumentException("layers must be L, L,L,..., or all, optionally with @L for one layer's"
                + " direction everywhere (e.g. all@24); got '" + whole + "'");
    }

    @Override
    public String toString() {
        String l = all() ? "all" : String.join(",", layers.stream().map(String::valueOf).toList());
        return source >= 0 ? l + "@" + source : l;
    }
}

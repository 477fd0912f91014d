package org.lora4j.train.directions;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraLinear;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ResidualHook;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Interventions made from {@link Directions} (docs/research.md, "Directions, steering and
 * ablation"): steering and directional ablation as residual hooks, and the weight-space ablation
 * of an adapter's B. The random control is {@link Directions#randomControl}, passed here in place
 * of the directions it controls for.
 */
public final class DirectionHooks {
    private static final Pattern LAYER = Pattern.compile("(?:^|\\.)layers\\.(\\d+)\\.");

    private DirectionHooks() {
    }

    /** Hooks added to a model, by layer, so they can be taken off again. */
    public record Installed(List<Integer> layers, List<ResidualHook> hooks) {
        public Installed {
            layers = List.copyOf(layers);
            hooks = List.copyOf(hooks);
        }

        public void remove(DecoderModel model) {
            for (int i = 0; i < layers.size(); i++) {
                model.removeResidualHook(layers.get(i), hooks.get(i));
            }
        }
    }

    /**
     * Steering: {@code h_l <- h_l + lambda · v_l} at every position, prompt and generated, after
     * block {@code layer}, with the raw (unnormalised) direction, as the paper steers.
     */
    public static Installed steer(DecoderModel model, Directions directions, int layer, double lambda) {
        directions.checkFits(model.config());
        checkLayer(layer, model.config().numLayers());
        if (!Double.isFinite(lambda)) {
            throw new IllegalArgumentException("steering lambda must be finite, got " + lambda);
        }
        ResidualHook h = new ResidualHook.AddVector(directions.array(layer), lambda);
        model.addResidualHook(layer, h);
        return new Installed(List.of(layer), List.of(h));
    }

    /**
     * Directional ablation: {@code h <- h − (h·r) r} with {@code r = v / ‖v‖} at every position,
     * after each selected block, with each layer's own direction or the source layer's at all of
     * them. Its backward is the same projection. Every direction is checked before any hook is added.
     */
    public static Installed ablate(DecoderModel model, Directions directions, LayerSelection where) {
        directions.checkFits(model.config());
        List<Integer> layers = where.resolve(model.config().numLayers());
        List<ResidualHook> hooks = new ArrayList<>();
        for (int l : layers) {
            hooks.add(new ResidualHook.ProjectOut(Nd4j.createFromArray(direction(directions, where.sourceFor(l)))));
        }
        for (int i = 0; i < layers.size(); i++) {
            model.addResidualHook(layers.get(i), hooks.get(i));
        }
        return new Installed(layers, hooks);
    }

    /**
     * Weight-space ablation: projects {@code r = v / ‖v‖} out of the B of every adapter that writes
     * the residual stream ({@code self_attn.o_proj} and {@code mlp.down_proj}: their output is added
     * to the stream, so B's columns live in it) at the selected layers, and rescales each B to its
     * old Frobenius norm, as the paper does. An adapter at layer l uses v_l, or the source layer's
     * direction. Adapters on other modules write into q/k/v or the MLP's hidden space, where the
     * direction has no meaning, and are left alone. All or nothing: everything is checked first.
     *
     * @return the modules whose B changed, in model order
     * @throws IllegalArgumentException when no active adapter writes the residual stream at those
     *                                  layers, an adapter is merged (B no longer acts), or a
     *                                  direction is missing or zero
     */
    public static List<String> ablateAdapterB(DecoderModel model, Directions directions, LayerSelection where) {
        directions.checkFits(model.config());
        List<Integer> layers = where.resolve(model.config().numLayers());
        Map<String, LoraAdapter> targets = new LinkedHashMap<>();
        Map<String, double[]> dirs = new LinkedHashMap<>();
        List<String> adapted = new ArrayList<>();
        for (Map.Entry<String, LoraLinear> e : model.linearLayers().entrySet()) {
            LoraAdapter a = e.getValue().activeAdapter();
            if (a == null) {
                continue;
            }
            adapted.add(e.getKey());
            int layer = layerOf(e.getKey());
            if (!writesResidual(e.getKey()) || !layers.contains(layer)) {
                continue;
            }
            if (e.getValue().isMerged()) {
                throw new IllegalArgumentException(e.getKey() + ": the adapter is merged into the weights, so editing its"
                        + " B would change nothing; ablate B before merging");
            }
            targets.put(e.getKey(), a);
            dirs.put(e.getKey(), direction(directions, where.sourceFor(layer)));
        }
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("no adapter writes the residual stream at layer(s) "
                    + (where.all() ? "all" : where.layers()) + ": weight-space ablation edits the B of adapters on"
                    + " o_proj or down_proj, and the model's adapters are on " + (adapted.isEmpty() ? "no module (load one with --adapter)"
                    : adapted));
        }
        for (Map.Entry<String, LoraAdapter> e : targets.entrySet()) {
            e.getValue().projectOutOfB(Nd4j.createFromArray(dirs.get(e.getKey())), true);
        }
        return List.copyOf(targets.keySet());
    }

    /** Whether a linear layer's output is added to the residual stream: attention's o_proj, the MLP's down_proj. */
    public static boolean writesResidual(String module) {
        return module.endsWith("self_attn.o_proj") || module.endsWith("mlp.down_proj");
    }

    /** The block index in a module path such as {@code model.layers.3.mlp.down_proj}; -1 for none (lm_head). */
    public static int layerOf(String module) {
        Matcher m = LAYER.matcher(module);
        return m.find() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** The direction of a layer, refused when missing or zero (a zero vector has no unit direction). */
    private static double[] direction(Directions d, int layer) {
        double[] v = d.vector(layer);
        if (!(Directions.norm(v) > 0)) {
            throw new IllegalArgumentException(d.source() + ": the direction of layer " + layer
                    + " is zero, so it has no unit vector to ablate");
        }
        return v;
    }

    private static void checkLayer(int layer, int numLayers) {
        if (layer < 0 || layer >= numLayers) {
            throw new IllegalArgumentException("layer " + layer + " is out of range: the model has " + numLayers
                    + " layers (0.." + (numLayers - 1) + ")");
        }
    }
}

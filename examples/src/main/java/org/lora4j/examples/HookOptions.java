package org.lora4j.examples;

import org.lora4j.train.text.TextFiles;
import org.lora4j.train.directions.DirectionHooks;
import org.lora4j.train.directions.Directions;
import org.lora4j.train.directions.LayerSelection;
import org.lora4j.train.model.DecoderModel;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import picocli.CommandLine.Option;

/**
 * The intervention options of every command that runs a model ({@code loss}, {@code generate},
 * {@code eval}): steering, directional ablation, weight-space ablation and the random control,
 * each made from a directions file that {@code lora4j direction} wrote (docs/research.md,
 * "Directions, steering and ablation"); a picocli mixin. {@link #validate} checks the syntax
 * before any work, then {@link #apply} installs them once the model (and adapter) is loaded; the description it returns goes into
 * the command's output, so every result says which interventions made it.
 */
final class HookOptions {
    @Option(names = "--steer", paramLabel = "FILE:LAYER:LAMBDA", description = "add LAMBDA times the direction of"
            + " LAYER (in the directions file FILE) to the residual stream after block LAYER, at every position")
    String steer;
    @Option(names = "--ablate", paramLabel = "FILE:LAYERS", description = "remove the direction's component,"
            + " h - (h.r)r with r = v/|v|, after each block of LAYERS (L, L,L or all), each with its own layer's"
            + " direction; LAYERS@S uses layer S's direction at all of them (e.g. all@24)")
    String ablate;
    @Option(names = "--ablate-b", paramLabel = "FILE:LAYERS", description = "project r out of the B of the adapter's"
            + " o_proj and down_proj at LAYERS (same form), keeping B's norm; needs --adapter")
    String ablateB;
    @Option(names = "--random-control", paramLabel = "SEED", description = "use, in place of every direction above,"
            + " a random one of the same norm")
    Long randomSeed;
    private ObjectNode applied;

    /** Checks the options' syntax, so a typo is reported before the model loads; returns this. */
    HookOptions validate() {
        if (randomSeed != null && isEmpty()) {
            throw new IllegalArgumentException("--random-control replaces the directions of --steer, --ablate or --ablate-b;"
                    + " give one of them");
        }
        if (steer != null) {
            steerParts(steer);
        }
        if (ablate != null) {
            selection("--ablate", ablate);
        }
        if (ablateB != null) {
            selection("--ablate-b", ablateB);
        }
        return this;
    }

    boolean isEmpty() {
        return steer == null && ablate == null && ablateB == null;
    }

    /** True when an option edits the adapter's weights ({@code --ablate-b}) rather than adding hooks. */
    boolean editsAdapter() {
        return ablateB != null;
    }

    /** What the last {@link #apply} installed, for the command's record; null before it or when empty. */
    ObjectNode applied() {
        return applied;
    }

    /**
     * Validates the options against the model and installs them: weight-space ablation first (it
     * edits B), then the ablation hooks, then steering, so at a layer with both the steering vector
     * is added after the ablation and survives it.
     *
     * @return what was applied, for the command's output; null when no option was given
     */
    ObjectNode apply(DecoderModel model) throws IOException {
        if (isEmpty()) {
            return null;
        }
        ObjectNode o = new ObjectMapper().createObjectNode();
        if (ablateB != null) {
            String[] p = selection("--ablate-b", ablateB);
            Directions d = load("--ablate-b", p[0], model);
            LayerSelection where = LayerSelection.parse(p[1]);
            List<String> modules = wrap("--ablate-b " + ablateB, () -> DirectionHooks.ablateAdapterB(model, d, where));
            ObjectNode n = describe(p[0], d, where.toString());
            ArrayNode m = n.putArray("modules");
            modules.forEach(m::add);
            o.set("ablate_b", n);
        }
        if (ablate != null) {
            String[] p = selection("--ablate", ablate);
            Directions d = load("--ablate", p[0], model);
            LayerSelection where = LayerSelection.parse(p[1]);
            DirectionHooks.Installed in = wrap("--ablate " + ablate, () -> DirectionHooks.ablate(model, d, where));
            ObjectNode n = describe(p[0], d, where.toString());
            ArrayNode at = n.putArray("at_layers");
            in.layers().forEach(at::add);
            o.set("ablate", n);
        }
        if (steer != null) {
            Object[] p = steerParts(steer);
            Directions d = load("--steer", (String) p[0], model);
            int layer = (Integer) p[1];
            double lambda = (Double) p[2];
            wrap("--steer " + steer, () -> DirectionHooks.steer(model, d, layer, lambda));
            ObjectNode n = describe((String) p[0], d, Integer.toString(layer));
            n.put("lambda", lambda);
            n.put("norm", d.norm(layer));
            o.set("steer", n);
        }
        if (randomSeed != null) {
            o.put("random_control", randomSeed);
        }
        applied = o;
        return o;
    }

    /** The file's directions, or their random control; width and layers checked against the model. */
    private Directions load(String option, String file, DecoderModel model) throws IOException {
        Directions d;
        try {
            d = Directions.read(Path.of(file), model.config());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(option + " " + e.getMessage(), e);
        }
        return randomSeed == null ? d : d.randomControl(randomSeed);
    }

    /** Runs an intervention; its error is prefixed with the option as given, naming the file and layers. */
    private static <T> T wrap(String given, java.util.function.Supplier<T> action) {
        try {
            return action.get();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(given + ": " + e.getMessage(), e);
        }
    }

    private static ObjectNode describe(String file, Directions d, String layers) throws IOException {
        ObjectNode n = new ObjectMapper().createObjectNode();
        n.put("file", file);
        n.put("sha256", TextFiles.sha256(Path.of(file)));
        n.put("layers", layers);
        return n;
    }

    /** FILE:LAYER:LAMBDA, split at the last two colons (a path may hold colons). */
    private static Object[] steerParts(String s) {
        int last = s.lastIndexOf(':');
        int mid = last <= 0 ? -1 : s.lastIndexOf(':', last - 1);
        if (mid <= 0) {
            throw new IllegalArgumentException("--steer must be FILE:LAYER:LAMBDA (e.g. dir.safetensors:12:8), got '" + s + "'");
        }
        String layer = s.substring(mid + 1, last);
        String lambda = s.substring(last + 1);
        int l;
        double x;
        try {
            l = Integer.parseInt(layer);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--steer " + s + ": LAYER must be an integer, got '" + layer + "'");
        }
        try {
            x = Double.parseDouble(lambda);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--steer " + s + ": LAMBDA must be a number, got '" + lambda + "'");
        }
        if (l < 0 || !Double.isFinite(x)) {
            throw new IllegalArgumentException("--steer " + s + ": LAYER must be >= 0 and LAMBDA finite");
        }
        return new Object[]{s.substring(0, mid), l, x};
    }

    /** FILE:LAYERS, split at the last colon; LAYERS is checked here, the file when applied. */
    private static String[] selection(String option, String s) {
        int last = s.lastIndexOf(':');
        if (last <= 0 || last == s.length() - 1) {
            throw new IllegalArgumentException(option + " must be FILE:LAYERS with LAYERS = L, L,L, all, or any of"
                    + " them @S for layer S's direction everywhere (e.g. dir.safetensors:all@24), got '" + s + "'");
        }
        String layers = s.substring(last + 1);
        try {
            LayerSelection.parse(layers);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(option + " " + s + ": " + e.getMessage(), e);
        }
        return new String[]{s.substring(0, last), layers};
    }
}

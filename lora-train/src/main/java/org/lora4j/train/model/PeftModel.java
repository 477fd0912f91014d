package org.lora4j.train.model;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.LoraLinear;
import org.lora4j.core.PeftAdapter;
import org.lora4j.core.PeftAdapters;
import org.lora4j.train.optim.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.function.IntToLongFunction;

/**
 * The adapter verbs of a whole {@link DecoderModel}, named as PEFT names them: {@link #addAdapter}
 * ({@code get_peft_model} / {@code add_adapter}), {@link #loadAdapter} ({@code load_adapter} /
 * {@code PeftModel.from_pretrained}), {@link #setAdapter}, {@link #mergeAdapter},
 * {@link #unmergeAdapter}, {@link #disableAdapter} / {@link #enableAdapter},
 * {@link #trainableParameters} ({@code get_nb_trainable_parameters}) and {@link #savePretrained}.
 * Each acts on every adapted linear layer, so the command line and the trainer never loop over
 * layers themselves; per-layer control stays on {@link LoraLinear}.
 *
 * <p>A view, not a copy: it holds no state of its own, and any number of them may wrap one model.
 */
public final class PeftModel {
    /** PEFT's name for an adapter that was not given one. */
    public static final String DEFAULT_ADAPTER = "default";

    private final DecoderModel model;

    public PeftModel(DecoderModel model) {
        this.model = Objects.requireNonNull(model, "model");
    }

    /** The wrapped model. */
    public DecoderModel model() {
        return model;
    }

    // ---------------------------------------------------------------------------------------------
    // Attach

    /**
     * Adds an adapter named {@code adapterName} to every linear layer {@code config.matches} (PEFT's
     * target_modules / layers_to_transform rule), each with its own seed split from {@code seed}.
     *
     * @return the module paths adapted, in model order
     * @throws IllegalArgumentException when no layer matches
     */
    public List<String> addAdapter(String adapterName, LoraConfig config, long seed) {
        Objects.requireNonNull(adapterName, "adapterName");
        Objects.requireNonNull(config, "config");
        Map<String, LoraLinear> layers = model.linearLayers();
        List<String> adapted = new ArrayList<>();
        for (LoraLinear l : layers.values()) {
            if (config.matches(l.name())) {
                adapted.add(l.name());
            }
        }
        if (adapted.isEmpty()) {
            // Checked before any layer changes, so a refused config leaves the model as it was.
            throw new IllegalArgumentException("target_modules " + config.targetModules()
                    + (config.layersToTransform().isEmpty() ? "" : " with layers_to_transform " + config.layersToTransform())
                    + " match no layer; module names end in q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head"
                    + " and layers are 0.." + (model.config().numLayers() - 1));
        }
        SplittableRandom root = new SplittableRandom(seed);
        for (LoraLinear l : layers.values()) {
            long layerSeed = root.split().nextLong();  // split for every layer, so seeds do not depend on the targets
            if (config.matches(l.name())) {
                l.addAdapter(adapterName, config, layerSeed);
            }
        }
        return adapted;
    }

    /**
     * Attaches a loaded PEFT adapter as {@code adapterName} on the layers it names (see
     * {@link PeftAdapters#apply}: everything is checked before any layer changes).
     *
     * @return the module paths adapted, in model order
     */
    public List<String> loadAdapter(PeftAdapter adapter, String adapterName) {
        PeftAdapters.apply(adapter, model.linearLayers(), adapterName);
        List<String> adapted = new ArrayList<>();
        for (String module : model.linearLayers().keySet()) {
            if (adapter.loraA().containsKey(module)) {
                adapted.add(module);
            }
        }
        return adapted;
    }

    /** Reads a PEFT adapter directory ({@link PeftAdapters#load}) and attaches it as {@code adapterName}. */
    public List<String> loadAdapter(Path dir, String adapterName) throws IOException {
        return loadAdapter(PeftAdapters.load(dir), adapterName);
    }

    /** Makes {@code adapterName} the active adapter of every layer that has it. */
    public void setAdapter(String adapterName) {
        boolean found = false;
        for (LoraLinear l : model.linearLayers().values()) {
            if (l.adapterNames().contains(adapterName)) {
                found = true;
            }
        }
        if (!found) {
            throw new IllegalArgumentException("no layer has an adapter '" + adapterName + "'; have " + adapterNames());
        }
        for (LoraLinear l : model.linearLayers().values()) {
            if (l.adapterNames().contains(adapterName)) {
                l.setActiveAdapter(adapterName);
            }
        }
    }

    /** Every adapter name on any layer, in the order first seen. */
    public List<String> adapterNames() {
        List<String> names = new ArrayList<>();
        for (LoraLinear l : model.linearLayers().values()) {
            for (String n : l.adapterNames()) {
                if (!names.contains(n)) {
                    names.add(n);
                }
            }
        }
        return names;
    }

    /** The active adapter of every layer that has one, by module path in model order (unmodifiable). */
    public Map<String, LoraAdapter> activeAdapters() {
        Map<String, LoraAdapter> m = new LinkedHashMap<>();
        for (Map.Entry<String, LoraLinear> e : model.linearLayers().entrySet()) {
            LoraAdapter a = e.getValue().activeAdapter();
            if (a != null) {
                m.put(e.getKey(), a);
            }
        }
        return Collections.unmodifiableMap(m);
    }

    // ---------------------------------------------------------------------------------------------
    // Merge

    /**
     * Folds every layer's active adapter into its base weight ({@code W += scaling · multiplier · B A},
     * PEFT's {@code merge_adapter}). All or nothing: an adapter holding NaN or Inf anywhere is refused
     * before any weight changes, and a layer that fails midway has the layers before it unmerged.
     *
     * @return the number of layers merged
     * @throws IllegalStateException with no adapter, when an adapter is already merged, or for a
     *                               non-finite adapter (the message names the module)
     */
    public int mergeAdapter() {
        Map<String, LoraLinear> adapted = adaptedLayers();
        for (Map.Entry<String, LoraLinear> e : adapted.entrySet()) {
            if (e.getValue().isMerged()) {
                throw new IllegalStateException(e.getKey() + ": adapter '" + e.getValue().activeAdapter().name()
                        + "' is already merged");
            }
            LoraAdapter a = e.getValue().activeAdapter();
            checkFinite(e.getKey(), "lora_A", a.a());
            checkFinite(e.getKey(), "lora_B", a.b());
        }
        List<LoraLinear> done = new ArrayList<>();
        try {
            for (LoraLinear l : adapted.values()) {
                l.merge();
                done.add(l);
            }
        } catch (RuntimeException e) {
            for (LoraLinear l : done) {
                l.unmerge();
            }
            throw e;
        }
        return done.size();
    }

    /**
     * Subtracts the merged adapters from the base weights again (PEFT's {@code unmerge_adapter});
     * exact up to rounding.
     *
     * @throws IllegalStateException when no layer holds a merged adapter
     */
    public int unmergeAdapter() {
        int n = 0;
        for (LoraLinear l : model.linearLayers().values()) {
            if (l.isMerged()) {
                l.unmerge();
                n++;
            }
        }
        if (n == 0) {
            throw new IllegalStateException("no adapter is merged");
        }
        return n;
    }

    /** Whether any layer holds a merged adapter. */
    public boolean isMerged() {
        for (LoraLinear l : model.linearLayers().values()) {
            if (l.isMerged()) {
                return true;
            }
        }
        return false;
    }

    private static void checkFinite(String module, String which, INDArray w) {
        double sum = w.sumNumber().doubleValue();
        if (!Double.isFinite(sum) || Double.isNaN(w.amaxNumber().doubleValue())) {
            throw new IllegalStateException(module + "." + which + " holds values that are not finite (NaN or infinity)");
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Inference switches

    /**
     * Sets the factor on B of every layer's active adapter (docs/research.md: scaling an adapter up
     * or down at inference). It applies to the next forward, and to a merge made after it.
     *
     * @throws IllegalArgumentException for NaN or an infinity, before any layer changes
     * @throws IllegalStateException    with no adapter
     */
    public void setMultiplier(double multiplier) {
        if (!Double.isFinite(multiplier)) {
            throw new IllegalArgumentException("multiplier must be finite, got " + multiplier);
        }
        for (LoraLinear l : adaptedLayers().values()) {
            l.activeAdapter().setMultiplier(multiplier);
        }
    }

    /** Runs the base model alone (PEFT's {@code disable_adapter}); merged weights are not touched. */
    public void disableAdapter() {
        setAdaptersEnabled(false);
    }

    /** Turns the adapters back on after {@link #disableAdapter}. */
    public void enableAdapter() {
        setAdaptersEnabled(true);
    }

    private void setAdaptersEnabled(boolean enabled) {
        for (LoraLinear l : model.linearLayers().values()) {
            l.setAdaptersEnabled(enabled);
        }
    }

    /**
     * Seeds each layer's dropout stream: layer {@code i} (model order, as in
     * {@link DecoderModel#linearLayers()}) gets {@code seedOfLayer(i)}.
     */
    public void setDropoutSeeds(IntToLongFunction seedOfLayer) {
        int i = 0;
        for (LoraLinear l : model.linearLayers().values()) {
            l.setDropoutSeed(seedOfLayer.applyAsLong(i++));
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Counting and saving

    /**
     * PEFT's {@code get_nb_trainable_parameters}: the elements an optimizer would update, and all
     * elements (base weights, tied ones once, plus every adapter on every layer).
     */
    public record TrainableParameters(long trainable, long all) {
        /** trainable / all in percent. */
        public double percent() {
            return all == 0 ? 0 : 100.0 * trainable / all;
        }

        /** As PEFT's {@code print_trainable_parameters} prints it. */
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "trainable params: %,d || all params: %,d || trainable%%: %.4f",
                    trainable, all, percent());
        }
    }

    public TrainableParameters trainableParameters() {
        long all = 0;
        for (INDArray w : model.parameters().values()) {
            all += w.length();
        }
        for (LoraLinear l : model.linearLayers().values()) {
            for (String n : l.adapterNames()) {
                LoraAdapter a = l.adapter(n);
                all += a.a().length() + a.b().length();
            }
        }
        long trainable = 0;
        for (Parameter p : model.trainableParameters()) {
            trainable += p.value().length();
        }
        return new TrainableParameters(trainable, all);
    }

    /**
     * Saves every layer's active adapter as a PEFT adapter directory (PEFT's {@code save_pretrained}),
     * recording the model's {@link DecoderModel#nameOrPath()} as {@code base_model_name_or_path}.
     *
     * @throws IllegalStateException with no adapter
     */
    public void savePretrained(Path dir) throws IOException {
        savePretrained(dir, model.nameOrPath(), Map.of());
    }

    /**
     * Saves every layer's active adapter as a PEFT adapter directory (PEFT's {@code save_pretrained}:
     * {@code adapter_config.json} and {@code adapter_model.safetensors}), with the adapters' own
     * config; see {@link PeftAdapters#save(Path, PeftAdapter, Map)}.
     *
     * @param baseModelNameOrPath recorded as {@code base_model_name_or_path}
     * @param metadata            safetensors metadata (provenance)
     * @throws IllegalStateException with no adapter
     */
    public void savePretrained(Path dir, String baseModelNameOrPath, Map<String, String> metadata) throws IOException {
        Map<String, LoraAdapter> adapters = activeAdapters();
        if (adapters.isEmpty()) {
            throw noAdapter();
        }
        LoraConfig config = adapters.values().iterator().next().config();
        PeftAdapters.save(dir, config, adapters, baseModelNameOrPath, metadata);
    }

    /** The layers with an active adapter, by module path; refused when there are none. */
    private Map<String, LoraLinear> adaptedLayers() {
        Map<String, LoraLinear> m = new LinkedHashMap<>();
        for (Map.Entry<String, LoraLinear> e : model.linearLayers().entrySet()) {
            if (e.getValue().activeAdapter() != null) {
                m.put(e.getKey(), e.getValue());
            }
        }
        if (m.isEmpty()) {
            throw noAdapter();
        }
        return m;
    }

    private static IllegalStateException noAdapter() {
        return new IllegalStateException("the model has no adapter; attach one with addAdapter or loadAdapter");
    }
}

package org.lora4j.train.directions;

import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ResidualHook;
import org.lora4j.train.trainer.Version;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Mean-difference directions (docs/research.md, "Directions, steering and ablation"):
 * {@code v_l = mean(positive) − mean(negative)} of the residual stream after block l, each mean
 * pooled over tokens (every pooled position of every example counts once, so a long answer weighs
 * more than a short one), accumulated in double.
 *
 * <p>Layer l is the stream after block l (0-based) with the hooks' view of it: what Hugging Face's
 * {@code output_hidden_states} returns as {@code hidden_states[l + 1]} for every layer but the
 * last; for the last, transformers' Llama and Qwen2 put the stream after the final RMSNorm in
 * {@code hidden_states[num_layers]}, while here layer {@code num_layers − 1} is the stream before
 * that norm (the residual itself, which is what a hook edits).
 *
 * <p>The model runs in evaluation mode (no adapter dropout) with the hooks it already has, so a
 * direction can be taken from a steered or ablated model too.
 */
public final class MeanDifference {
    private MeanDifference() {
    }

    /** Examples per forward pass; the result does not depend on it beyond float rounding in the products. */
    public static final int DEFAULT_BATCH = 8;

    /**
     * The directions at {@code layers} (empty: every layer), with provenance in their metadata.
     *
     * @param balance    when true the larger set is subsampled, by examples, to the smaller set's size
     *                   (seeded), as the paper subsamples the aligned answers to the misaligned ones' count
     * @param seed       for that subsampling; recorded either way
     * @param provenance more metadata (the model and adapter paths, ...), recorded as given
     * @throws IllegalArgumentException for a layer out of range or a token outside the vocabulary
     */
    public static Directions compute(DecoderModel model, ContrastSet positive, ContrastSet negative, Pooling pooling,
                                     List<Integer> layers, boolean balance, long seed, int batchSize,
                                     Map<String, String> provenance) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(pooling, "pooling");
        int numLayers = model.config().numLayers();
        List<Integer> chosen = new LayerSelection(layers, -1).resolve(numLayers);
        if (balance) {
            int n = Math.min(positive.size(), negative.size());
            // Split seeds, so the two draws are independent of each other.
            positive = positive.subsample(n, seed);
            negative = negative.subsample(n, seed + 1);
        }
        double[][] pos = means(model, positive, chosen, batchSize);
        double[][] neg = means(model, negative, chosen, batchSize);
        Map<Integer, double[]> v = new TreeMap<>();
        for (int i = 0; i < chosen.size(); i++) {
            double[] d = new double[pos[i].length];
            for (int c = 0; c < d.length; c++) {
                d[c] = pos[i][c] - neg[i][c];
            }
            v.put(chosen.get(i), d);
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("method", "mean_difference");
        meta.put("pooling", pooling.toString());
        meta.put("layers", layers.isEmpty() ? "all" : chosen.toString().replace(" ", ""));
        meta.put("positive", positive.name());
        meta.put("positive_sha256", positive.sha256());
        meta.put("positive_examples", Integer.toString(positive.size()));
        meta.put("positive_tokens", Long.toString(positive.tokens()));
        meta.put("negative", negative.name());
        meta.put("negative_sha256", negative.sha256());
        meta.put("negative_examples", Integer.toString(negative.size()));
        meta.put("negative_tokens", Long.toString(negative.tokens()));
        meta.put("balance", Boolean.toString(balance));
        meta.put("seed", Long.toString(seed));
        meta.put("d_model", Integer.toString(model.config().hiddenSize()));
        meta.put("num_layers", Integer.toString(numLayers));
        meta.put("lora4j_version", Version.get());
        if (provenance != null) {
            meta.putAll(provenance);
        }
        return new Directions(v, meta, "mean difference of " + positive.name() + " and " + negative.name());
    }

    /**
     * Per chosen layer, the mean [d_model] of the residual stream over the set's pooled positions.
     * Examples run in file order, {@code batchSize} at a time, right-padded to the longest of their
     * batch (causal attention: padding after a sequence does not change it; pads are not pooled).
     */
    public static double[][] means(DecoderModel model, ContrastSet set, List<Integer> layers, int batchSize) {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        }
        model.setTraining(false);
        List<ResidualHook.Capture> pools = new ArrayList<>();
        for (int l : layers) {
            ResidualHook.Capture p = new ResidualHook.Capture();
            model.addResidualHook(l, p);
            pools.add(p);
        }
        try {
            for (int from = 0; from < set.size(); from += batchSize) {
                int to = Math.min(set.size(), from + batchSize);
                int seq = 0;
                for (int i = from; i < to; i++) {
                    seq = Math.max(seq, set.ids().get(i).length);
                }
                int batch = to - from;
                int[] tokens = new int[batch * seq];
                boolean[] mask = new boolean[batch * seq];
                for (int i = from; i < to; i++) {
                    int[] ids = set.ids().get(i);
                    System.arraycopy(ids, 0, tokens, (i - from) * seq, ids.length);
                    System.arraycopy(set.pooled().get(i), 0, mask, (i - from) * seq, ids.length);
                }
                try {
                    model.forward(tokens, mask, batch, seq);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(set.name() + ":" + set.lines().get(from) + " (batch from this line): "
                            + e.getMessage(), e);
                }
            }
        } finally {
            for (int i = 0; i < layers.size(); i++) {
                model.removeResidualHook(layers.get(i), pools.get(i));
            }
        }
        double[][] out = new double[layers.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = pools.get(i).meanVector();
        }
        return out;
    }
}

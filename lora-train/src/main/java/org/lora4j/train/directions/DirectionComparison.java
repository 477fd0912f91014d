package org.lora4j.train.directions;

import org.lora4j.core.LoraAdapter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Comparing directions (docs/research.md, "Directions, steering and ablation"): the per-layer
 * cosine of two direction files, {@code cos(v_l^A, v_l^B)}, signed and absolute, and the cosine of
 * each column of an adapter's B with the direction of its layer. All in double.
 */
public final class DirectionComparison {
    private DirectionComparison() {
    }

    /** One layer of two direction files. */
    public record LayerCosine(int layer, double cosine, double normA, double normB) {
        public double absCosine() {
            return Math.abs(cosine);
        }
    }

    /** One column of an adapter's B against the direction of its layer. */
    public record AdapterCosine(String module, int layer, int column, double cosine, double columnNorm) {
        public double absCosine() {
            return Math.abs(cosine);
        }
    }

    /**
     * Per-layer cosines; a zero vector's cosine is NaN (no direction to compare).
     *
     * @throws IllegalArgumentException when the two hold different layers or widths; the message
     *                                  names both files and the difference
     */
    public static List<LayerCosine> layers(Directions a, Directions b) {
        if (a.width() != b.width()) {
            throw new IllegalArgumentException(a.source() + " has width " + a.width() + " but " + b.source() + " has "
                    + b.width() + ": directions of different models cannot be compared");
        }
        if (!a.layers().equals(b.layers())) {
            throw new IllegalArgumentException(a.source() + " holds layers " + a.layers() + " but " + b.source()
                    + " holds " + b.layers() + "; compare files made with the same --layers");
        }
        List<LayerCosine> out = new ArrayList<>();
        for (int l : a.layers()) {
            double[] x = a.vector(l);
            double[] y = b.vector(l);
            out.add(new LayerCosine(l, cosine(x, y), Directions.norm(x), Directions.norm(y)));
        }
        return out;
    }

    /**
     * For every adapter whose B writes the residual stream ({@link DirectionHooks#writesResidual})
     * and whose layer has a direction, the cosine of each column of B ([d_model, rank]) with it.
     *
     * @param bByModule each adapter's B [d_model, rank] by module path, e.g. a loaded PEFT file's lora_B
     * @throws IllegalArgumentException when B's height is not the directions' width, or no adapter
     *                                  qualifies (the message lists the modules and the layers)
     */
    public static List<AdapterCosine> adapterColumns(Directions d, Map<String, INDArray> bByModule) {
        List<AdapterCosine> out = new ArrayList<>();
        for (Map.Entry<String, INDArray> e : bByModule.entrySet()) {
            String module = e.getKey();
            int layer = DirectionHooks.layerOf(module);
            if (!DirectionHooks.writesResidual(module) || !d.has(layer)) {
                continue;
            }
            double[][] b = e.getValue().toDoubleMatrix();   // [d_model, rank]
            if (b.length != d.width()) {
                throw new IllegalArgumentException(module + ".lora_B has " + b.length + " rows but " + d.source()
                        + " has width " + d.width());
            }
            double[] v = d.vector(layer);
            for (int j = 0; j < b[0].length; j++) {
                double[] col = new double[b.length];
                for (int i = 0; i < b.length; i++) {
                    col[i] = b[i][j];
                }
                out.add(new AdapterCosine(module, layer, j, cosine(col, v), Directions.norm(col)));
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("no adapter B writes the residual stream at a layer of " + d.source()
                    + " (layers " + d.layers() + "): B columns are compared for o_proj and down_proj adapters; the adapter has "
                    + bByModule.keySet());
        }
        return out;
    }

    /** As {@link #adapterColumns(Directions, Map)} for attached adapters. */
    public static List<AdapterCosine> adapterColumnsOf(Directions d, Map<String, LoraAdapter> adapters) {
        Map<String, INDArray> b = new java.util.LinkedHashMap<>();
        adapters.forEach((m, a) -> b.put(m, a.b()));
        return adapterColumns(d, b);
    }

    /** cos(x, y) in double; NaN when either is zero. */
    public static double cosine(double[] x, double[] y) {
        double xy = 0;
        double xx = 0;
        double yy = 0;
        for (int i = 0; i < x.length; i++) {
            xy += x[i] * y[i];
            xx += x[i] * x[i];
            yy += y[i] * y[i];
        }
        return xx == 0 || yy == 0 ? Double.NaN : xy / Math.sqrt(xx * yy);
    }
}

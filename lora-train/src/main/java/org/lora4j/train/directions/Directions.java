package org.lora4j.train.directions;

import org.lora4j.core.Safetensors;
import org.lora4j.core.SafetensorsFile;
import org.lora4j.train.model.ModelConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One direction per layer in the residual stream, as a mean-difference direction or a steering
 * vector (docs/research.md, "Directions, steering and ablation"): {@code v_l} of width d_model for
 * some layers l, 0-based, where layer l is the stream after block l.
 *
 * <p>The file is safetensors: one F32 tensor [d_model] per layer, keyed {@code layers.<l>}, and
 * {@code __metadata__} saying how it was made (the sets' sha256 and token counts, the pooling, the
 * model, the seed, the library version: see {@link MeanDifference}). Vectors are held in double;
 * they are written as float32, so a read-back vector is the written one rounded to float32.
 *
 * <p>Immutable.
 */
public final class Directions {
    /** The {@code format} metadata value this class writes; read files need not carry it. */
    public static final String FORMAT = "lora4j-directions";
    private static final Pattern KEY = Pattern.compile("layers\\.(0|[1-9][0-9]{0,8})");

    private final Map<Integer, double[]> vectors;   // by layer, ascending
    private final int width;
    private final Map<String, String> metadata;
    private final String source;                     // the file, or a description, for messages

    /**
     * @param vectors  [d_model] per layer (copied), at least one, all of one width, finite
     * @param metadata provenance (copied; null for none)
     * @param source   what the vectors are called in error messages, e.g. the file they came from
     */
    public Directions(Map<Integer, double[]> vectors, Map<String, String> metadata, String source) {
        this.source = Objects.requireNonNull(source, "source");
        Objects.requireNonNull(vectors, "vectors");
        if (vectors.isEmpty()) {
            throw new IllegalArgumentException(source + ": holds no direction; expected one tensor per layer, keyed layers.<l>");
        }
        TreeMap<Integer, double[]> m = new TreeMap<>();
        int w = -1;
        for (Map.Entry<Integer, double[]> e : vectors.entrySet()) {
            int layer = Objects.requireNonNull(e.getKey(), "layer");
            double[] v = Objects.requireNonNull(e.getValue(), () -> source + ": layer " + layer + " is null");
            if (layer < 0) {
                throw new IllegalArgumentException(source + ": layer must be >= 0, got " + layer);
            }
            if (w < 0) {
                w = v.length;
            } else if (v.length != w) {
                throw new IllegalArgumentException(source + ": layers." + layer + " has " + v.length
                        + " elements but layers." + m.firstKey() + " has " + w + "; every direction has the model's width");
            }
            for (int i = 0; i < v.length; i++) {
                if (!Double.isFinite(v[i])) {
                    throw new IllegalArgumentException(source + ": layers." + layer + "[" + i + "] is " + v[i]
                            + "; a direction must be finite");
                }
            }
            m.put(layer, v.clone());
        }
        if (w == 0) {
            throw new IllegalArgumentException(source + ": directions have no elements");
        }
        this.vectors = Collections.unmodifiableMap(m);
        this.width = w;
        this.metadata = metadata == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    }

    /** The layers that have a direction, ascending. */
    public List<Integer> layers() {
        return List.copyOf(vectors.keySet());
    }

    /** d_model. */
    public int width() {
        return width;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    /** Where these directions came from (the file), as error messages name it. */
    public String source() {
        return source;
    }

    public boolean has(int layer) {
        return vectors.containsKey(layer);
    }

    /**
     * The direction of {@code layer}, a copy.
     *
     * @throws IllegalArgumentException when there is none; the message names the file and its layers
     */
    public double[] vector(int layer) {
        double[] v = vectors.get(layer);
        if (v == null) {
            throw new IllegalArgumentException(source + " has no direction for layer " + layer + "; it holds layers "
                    + layers());
        }
        return v.clone();
    }

    /** ‖v_l‖. */
    public double norm(int layer) {
        return norm(vector(layer));
    }

    static double norm(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x * x;
        }
        return Math.sqrt(s);
    }

    /** The direction of {@code layer} as a DOUBLE [d_model] array. */
    public INDArray array(int layer) {
        return Nd4j.createFromArray(vector(layer));
    }

    /**
     * Refuses directions that do not fit the model: a width other than its hidden size, or a layer
     * outside [0, num_hidden_layers). The message names the file and the value at fault.
     */
    public void checkFits(ModelConfig model) {
        if (width != model.hiddenSize()) {
            throw new IllegalArgumentException(source + ": directions have " + width + " elements but the model's"
                    + " hidden_size is " + model.hiddenSize() + " (made for another model?)");
        }
        int last = Collections.max(vectors.keySet());
        if (last >= model.numLayers()) {
            throw new IllegalArgumentException(source + ": has a direction for layer " + last + " but the model has "
                    + model.numLayers() + " layers (0.." + (model.numLayers() - 1) + ")");
        }
    }

    /**
     * The random control of docs/research.md: for every layer, a direction drawn uniformly on the
     * sphere (a normalised standard Gaussian vector) scaled to the norm of the direction it
     * replaces. The draw of layer l depends only on (seed, l), so the control of a layer is the
     * same whichever other layers a file holds, and two files' controls at one layer are parallel.
     */
    public Directions randomControl(long seed) {
        Map<Integer, double[]> out = new TreeMap<>();
        for (Map.Entry<Integer, double[]> e : vectors.entrySet()) {
            int layer = e.getKey();
            SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + layer);
            double[] g = new double[width];
            double n;
            do {
                for (int i = 0; i < width; i++) {
                    g[i] = rng.nextGaussian();
                }
                n = norm(g);
            } while (n == 0);
            double scale = norm(e.getValue()) / n;
            for (int i = 0; i < width; i++) {
                g[i] *= scale;
            }
            out.put(layer, g);
        }
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put("random_control_seed", Long.toString(seed));
        return new Directions(out, meta, "random control (seed " + seed + ") of " + source);
    }

    // ---------------------------------------------------------------------------------------------
    // File

    /**
     * Writes the file atomically (a failed write leaves an older file as it was): F32 tensors keyed
     * {@code layers.<l>} and the metadata, with {@code format} set to {@value #FORMAT}.
     */
    public void write(Path file) throws IOException {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        for (Map.Entry<Integer, double[]> e : vectors.entrySet()) {
            tensors.put("layers." + e.getKey(), Nd4j.createFromArray(e.getValue()).castTo(DataType.FLOAT));
        }
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put("format", FORMAT);
        Safetensors.write(file, tensors, meta);
    }

    /**
     * Reads a directions file, checking that every key is {@code layers.<l>} with a 1-D float
     * tensor, that all have one width and hold finite values.
     *
     * @throws IllegalArgumentException for a file that breaks those rules; the message names the
     *                                  file and the key or value
     * @throws IOException              when it cannot be read or is not safetensors
     */
    public static Directions read(Path file) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            Map<Integer, double[]> v = new TreeMap<>();
            for (String key : f.keys()) {
                Matcher m = KEY.matcher(key);
                if (!m.matches()) {
                    throw new IllegalArgumentException(file + ": unexpected key '" + key
                            + "'; a directions file holds one tensor per layer, keyed layers.<l>");
                }
                long[] shape = f.shape(key);
                String dtype = f.dtype(key);
                if (shape.length != 1) {
                    throw new IllegalArgumentException(file + ": " + key + " has shape " + java.util.Arrays.toString(shape)
                            + "; a direction is one vector [d_model]");
                }
                if (!dtype.startsWith("F") && !dtype.equals("BF16")) {
                    throw new IllegalArgumentException(file + ": " + key + " has dtype " + dtype
                            + "; a direction is floating point (F32)");
                }
                v.put(Integer.parseInt(m.group(1)), f.get(key, DataType.DOUBLE).toDoubleVector());
            }
            return new Directions(v, f.metadata(), file.toString());
        }
    }

    /** {@link #read(Path)}, then {@link #checkFits}. */
    public static Directions read(Path file, ModelConfig model) throws IOException {
        Directions d = read(file);
        d.checkFits(model);
        return d;
    }

    @Override
    public String toString() {
        return "Directions[" + source + ", layers " + layers() + ", width " + width + "]";
    }
}

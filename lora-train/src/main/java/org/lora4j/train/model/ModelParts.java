package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;

/**
 * The parts of a {@link DecoderModel} made from weights addressed by Hugging Face name: every
 * linear layer is a {@link LoraLinear} named by its module path, and with tied word embeddings the
 * embedding reads lm_head's weight.
 */
final class ModelParts {
    /** Supplies a weight by Hugging Face name and expected shape. */
    interface WeightSource {
        INDArray get(String key, long[] shape) throws IOException;
    }

    /**
     * Hugging Face's initialisation: N(0, 0.02) weights, each from its own seed split from
     * {@code seed} in model order, zero biases, unit norms.
     */
    static WeightSource huggingFaceInit(long seed, DataType dtype) {
        SplittableRandom root = new SplittableRandom(seed);
        return (key, shape) -> {
            if (key.endsWith(".bias")) {
                return Nd4j.zeros(dtype, shape);
            }
            if (key.endsWith("norm.weight")) {
                return Nd4j.ones(dtype, shape);
            }
            return gaussian(new Random(root.split().nextLong()), shape, dtype);
        };
    }

    /**
     * N(0, 0.02) of {@code shape} ('c' order) in {@code dtype}, drawn in double and rounded once, written
     * a chunk at a time: no double copy of the whole weight (at the 0.5B shape the embedding alone is
     * 1.1 GB in double).
     */
    private static INDArray gaussian(Random g, long[] shape, DataType dtype) {
        INDArray a = Nd4j.createUninitialized(dtype, shape, 'c');
        NativeBuffer buf = NativeBuffer.of(a);
        long len = a.length();
        double[] chunk = new double[(int) Math.min(len, 1 << 14)];
        for (long at = 0; at < len; at += chunk.length) {
            int m = (int) Math.min(chunk.length, len - at);
            for (int i = 0; i < m; i++) {
                chunk[i] = g.nextGaussian() * 0.02;
            }
            buf.write(chunk, 0, at, m);
        }
        return a;
    }

    final Rope rope;
    final Embedding embedding;
    final DecoderBlock[] blocks;
    final LmHead head;
    /** Every linear layer by module path, in model order, ending with {@code lm_head}. */
    final Map<String, LoraLinear> linears;

    private final ModelConfig config;
    private final DataType dtype;
    private final Map<String, LoraLinear> made = new LinkedHashMap<>();

    ModelParts(ModelConfig config, DataType dtype, WeightSource src) throws IOException {
        this.config = config;
        this.dtype = dtype;
        int d = config.hiddenSize();
        int vocab = config.vocabSize();
        int ff = config.intermediateSize();
        int qd = config.qDim();
        int kvd = config.kvDim();
        boolean ab = config.attentionBias();
        boolean mb = config.mlpBias();
        this.rope = new Rope(config);
        Attention core = new Attention(config.numHeads(), config.numKvHeads(), config.headDim(), dtype);
        INDArray table = src.get("model.embed_tokens.weight", new long[]{vocab, d});
        this.blocks = new DecoderBlock[config.numLayers()];
        for (int i = 0; i < blocks.length; i++) {
            String p = "model.layers." + i + ".";
            SelfAttention attn = new SelfAttention(
                    linear(src, p + "self_attn.q_proj", qd, d, ab),
                    linear(src, p + "self_attn.k_proj", kvd, d, ab),
                    linear(src, p + "self_attn.v_proj", kvd, d, ab),
                    linear(src, p + "self_attn.o_proj", d, qd, config.outputBias()),
                    rope, core, config, dtype);
            SwiGluMlp mlp = new SwiGluMlp(
                    linear(src, p + "mlp.gate_proj", ff, d, mb),
                    linear(src, p + "mlp.up_proj", ff, d, mb),
                    linear(src, p + "mlp.down_proj", d, ff, mb), dtype);
            blocks[i] = new DecoderBlock(i, norm(src, p + "input_layernorm.weight"), attn,
                    norm(src, p + "post_attention_layernorm.weight"), mlp, d);
        }
        RmsNorm finalNorm = norm(src, "model.norm.weight");
        LoraLinear lmHead;
        if (config.tieWordEmbeddings()) {
            lmHead = new LoraLinear("lm_head", table, null);
            this.embedding = new Embedding(lmHead);
        } else {
            lmHead = new LoraLinear("lm_head", src.get("lm_head.weight", new long[]{vocab, d}).castTo(dtype), null);
            this.embedding = new Embedding(table, dtype);
        }
        made.put("lm_head", lmHead);
        this.head = new LmHead(finalNorm, lmHead, dtype);
        this.linears = Collections.unmodifiableMap(made);
    }

    private LoraLinear linear(WeightSource src, String path, int out, int in, boolean bias) throws IOException {
        INDArray w = src.get(path + ".weight", new long[]{out, in}).castTo(dtype);
        INDArray b = bias ? src.get(path + ".bias", new long[]{out}).castTo(dtype) : null;
        LoraLinear l = new LoraLinear(path, w, b);
        made.put(path, l);
        return l;
    }

    private RmsNorm norm(WeightSource src, String key) throws IOException {
        return new RmsNorm(key, src.get(key, new long[]{config.hiddenSize()}).castTo(dtype).dup(), config.rmsNormEps());
    }
}

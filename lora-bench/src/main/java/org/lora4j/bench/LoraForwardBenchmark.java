package org.lora4j.bench;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;

/**
 * {@link LoraLinear#forward} with an active adapter of B non-zero, in two ways:
 * <ul>
 *   <li>{@link #forwardInPlace}: x is the layer's own {@link LoraLinear#inputBuffer}, filled once
 *       in set-up. This is the fast path a transformer uses when it writes its previous op's output
 *       straight into that buffer; it costs the rank-r product, two memcpy of [n, r] and [out, r]
 *       and one gemm with inner dimension in + r.</li>
 *   <li>{@link #forwardCopyingInput}: x is a separate array, so each call also copies [n, in] into
 *       the layer's buffer. Shown so the fast path's advantage is not hidden.</li>
 * </ul>
 */
public class LoraForwardBenchmark extends LayerBenchmark {
    @Param({"1", "8", "16", "64"})
    public int rank;

    private LoraLinear layer;
    private INDArray xOwn;       // [n, in] the layer's input buffer (a view into its packed buffer)
    private INDArray xSeparate;  // [n, in] 'f', same values
    private INDArray out;        // [n, out] 'f'

    @Setup
    public void setUp() {
        layer = newLayer(2);
        addRandomAdapter(layer, rank, 3);
        xSeparate = uniformF(TOKENS, d, 1.0, 1);
        xOwn = layer.inputBuffer(TOKENS);
        xOwn.assign(xSeparate);
        out = outputF(TOKENS, d);

        LoraAdapter ad = layer.activeAdapter();
        INDArray expected = referenceForward(xSeparate, layer.weight(), ad.a(), ad.b(), ad.scaling());
        checkAdapterVisible(xSeparate, ad.a(), ad.b(), ad.scaling(), expected);
        forwardInPlace();
        check("forward, x in the input buffer", out, expected);
        forwardCopyingInput();
        check("forward, x copied", out, expected);
    }

    @Benchmark
    public INDArray forwardInPlace() {
        layer.forward(xOwn, out);
        return out;
    }

    @Benchmark
    public INDArray forwardCopyingInput() {
        layer.forward(xSeparate, out);
        return out;
    }
}

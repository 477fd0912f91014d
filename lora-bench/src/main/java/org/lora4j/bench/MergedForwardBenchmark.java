package org.lora4j.bench;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;

/**
 * {@link LoraLinear#forward} after {@link LoraLinear#merge()}: the adapter folded into W, so the
 * forward is the base product (the layer skips the adapter columns), plus the copy of x when x is
 * not the layer's input buffer. Its cost does not depend on the rank, so only one rank is run.
 */
public class MergedForwardBenchmark extends LayerBenchmark {
    @Param({"8"})
    public int rank;

    private LoraLinear layer;
    private INDArray xOwn;       // [n, in] the layer's input buffer
    private INDArray xSeparate;  // [n, in] 'f'
    private INDArray out;        // [n, out] 'f'

    @Setup
    public void setUp() {
        layer = newLayer(2);
        addRandomAdapter(layer, rank, 3);
        xSeparate = uniformF(TOKENS, d, 1.0, 1);
        LoraAdapter ad = layer.activeAdapter();
        INDArray expected = referenceForward(xSeparate, layer.weight(), ad.a(), ad.b(), ad.scaling());
        layer.merge();
        xOwn = layer.inputBuffer(TOKENS);
        xOwn.assign(xSeparate);
        out = outputF(TOKENS, d);

        mergedInPlace();
        check("merged forward, x in the input buffer", out, expected);
        mergedCopyingInput();
        check("merged forward, x copied", out, expected);
    }

    @Benchmark
    public INDArray mergedInPlace() {
        layer.forward(xOwn, out);
        return out;
    }

    @Benchmark
    public INDArray mergedCopyingInput() {
        layer.forward(xSeparate, out);
        return out;
    }
}

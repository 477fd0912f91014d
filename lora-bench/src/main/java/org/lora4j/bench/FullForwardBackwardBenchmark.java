package org.lora4j.bench;

import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Setup;

/**
 * Full-parameter training's layer work, for comparison with the frozen LoRA step: a layer with
 * <b>no adapter</b> and {@link LoraLinear#setWeightsTrainable trainable weights}, forward then
 * backward, which accumulates dW and writes dX. Three base products of arithmetic (forward, dW,
 * dX), so about 1.5x {@link TwoBaseProductsBenchmark}.
 */
public class FullForwardBackwardBenchmark extends LayerBenchmark {
    private LoraLinear layer;
    private INDArray x;     // [n, in] the layer's input buffer
    private INDArray out;   // [n, out] 'f'
    private INDArray dOut;  // [n, out] 'f'
    private INDArray dX;    // [n, in] 'f'

    @Setup
    public void setUp() {
        layer = newLayer(2);
        layer.setWeightsTrainable(true);
        INDArray xValues = uniformF(TOKENS, d, 1.0, 1);
        x = layer.inputBuffer(TOKENS);
        x.assign(xValues);
        out = outputF(TOKENS, d);
        dOut = uniformF(TOKENS, d, 1.0, 4);
        dX = outputF(TOKENS, d);

        INDArray w = layer.weight();
        INDArray expectedOut = referenceForward(xValues, w, null, null, 0);
        INDArray expectedDx = referenceInputGrad(dOut, w, null, null, 0);
        INDArray expectedDw = dbl(dOut).transpose().mmul(dbl(xValues));   // [out, in]
        layer.zeroGrad();
        forwardBackward();
        check("full forward output", out, expectedOut);
        check("full backward dX", dX, expectedDx);
        check("full backward dW", layer.weightGrad(), expectedDw);
        layer.zeroGrad();
    }

    @Benchmark
    public INDArray forwardBackward() {
        layer.forward(x, out);
        layer.backward(dOut, dX);
        return dX;
    }
}

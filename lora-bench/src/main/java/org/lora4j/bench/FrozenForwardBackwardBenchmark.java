package org.lora4j.bench;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;

/**
 * One LoRA training step's layer work with W frozen: {@link LoraLinear#forward} (x in the layer's
 * input buffer) then {@link LoraLinear#backward}, which accumulates dA and dB and writes dX. The
 * arithmetic floor is two base products (forward and input gradient), see
 * {@link TwoBaseProductsBenchmark}. Gradients accumulate across calls, as they do between
 * optimizer steps; their values do not change the cost.
 */
public class FrozenForwardBackwardBenchmark extends LayerBenchmark {
    @Param({"1", "8", "16", "64"})
    public int rank;

    private LoraLinear layer;
    private INDArray x;     // [n, in] the layer's input buffer
    private INDArray out;   // [n, out] 'f'
    private INDArray dOut;  // [n, out] 'f'
    private INDArray dX;    // [n, in] 'f'

    @Setup
    public void setUp() {
        layer = newLayer(2);
        addRandomAdapter(layer, rank, 3);
        INDArray xValues = uniformF(TOKENS, d, 1.0, 1);
        x = layer.inputBuffer(TOKENS);
        x.assign(xValues);
        out = outputF(TOKENS, d);
        dOut = uniformF(TOKENS, d, 1.0, 4);
        dX = outputF(TOKENS, d);

        LoraAdapter ad = layer.activeAdapter();
        double s = ad.scaling();
        INDArray w = layer.weight();
        INDArray expectedOut = referenceForward(xValues, w, ad.a(), ad.b(), s);
        INDArray expectedDx = referenceInputGrad(dOut, w, ad.a(), ad.b(), s);
        // dB = dOutᵀ (s x Aᵀ)   [out, r];   dA = s (dOut B)ᵀ x   [r, in]
        INDArray expectedDb = dbl(dOut).transpose().mmul(dbl(xValues).mmul(dbl(ad.a()).transpose())).muli(s);
        INDArray expectedDa = dbl(dOut).mmul(dbl(ad.b())).transpose().mmul(dbl(xValues)).muli(s);
        layer.zeroGrad();
        forwardBackward();
        check("frozen forward output", out, expectedOut);
        check("frozen backward dX", dX, expectedDx);
        check("frozen backward dB", ad.gradB(), expectedDb);
        check("frozen backward dA", ad.gradA(), expectedDa);
        layer.zeroGrad();
    }

    @Benchmark
    public INDArray forwardBackward() {
        layer.forward(x, out);
        layer.backward(dOut, dX);
        return dX;
    }
}

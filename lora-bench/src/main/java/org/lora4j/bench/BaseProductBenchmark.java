package org.lora4j.bench;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Setup;

/**
 * The baseline every forward is judged by: the base product {@code out = x Wᵀ} alone, one gemm
 * into a preallocated buffer. x [n, d], W [d, d] and out [n, d] are 'f' order, the layout
 * {@link org.lora4j.core.LoraLinear} keeps its own buffers in.
 */
public class BaseProductBenchmark extends LayerBenchmark {
    private INDArray x;    // [n, in] 'f'
    private INDArray w;    // [out, in] 'f'
    private INDArray out;  // [n, out] 'f'

    @Setup
    public void setUp() {
        x = uniformF(TOKENS, d, 1.0, 1);
        w = uniformF(d, d, 1.0 / Math.sqrt(d), 2);
        out = outputF(TOKENS, d);
        baseProduct();
        check("base product", out, referenceForward(x, w, null, null, 0));
    }

    @Benchmark
    public INDArray baseProduct() {
        Nd4j.gemm(x, w, out, false, true, 1.0, 0.0);
        return out;
    }
}

package org.lora4j.bench;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Setup;

/**
 * The floor for a frozen-W forward plus backward: the forward product {@code out = x Wᵀ} and the
 * input gradient {@code dX = dOut W}, two gemm calls into preallocated 'f' buffers and nothing else.
 */
public class TwoBaseProductsBenchmark extends LayerBenchmark {
    private INDArray x;     // [n, in] 'f'
    private INDArray w;     // [out, in] 'f'
    private INDArray out;   // [n, out] 'f'
    private INDArray dOut;  // [n, out] 'f'
    private INDArray dX;    // [n, in] 'f'

    @Setup
    public void setUp() {
        x = uniformF(TOKENS, d, 1.0, 1);
        w = uniformF(d, d, 1.0 / Math.sqrt(d), 2);
        out = outputF(TOKENS, d);
        dOut = uniformF(TOKENS, d, 1.0, 4);
        dX = outputF(TOKENS, d);
        twoBaseProducts();
        check("forward product", out, referenceForward(x, w, null, null, 0));
        check("input gradient", dX, referenceInputGrad(dOut, w, null, null, 0));
    }

    @Benchmark
    public INDArray twoBaseProducts() {
        Nd4j.gemm(x, w, out, false, true, 1.0, 0.0);      // out = x Wᵀ   [n, out]
        Nd4j.gemm(dOut, w, dX, false, false, 1.0, 0.0);   // dX = dOut W  [n, in]
        return dX;
    }
}

package org.lora4j.bench;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Setup;

/**
 * Why run-benchmarks.sh exports OMP_WAIT_POLICY=PASSIVE: an ND4J element-wise op (run on libnd4j's
 * OpenMP threads) followed by a gemm (run on OpenBLAS's own threads), the pattern of every
 * transformer layer. With OpenMP's default wait policy the OpenMP workers keep spinning after the
 * element-wise op and compete with the gemm for the two cores. Compare
 * {@link #elementwiseThenProduct} with {@link #elementwiseAlone} plus
 * {@link BaseProductBenchmark#baseProduct}, with and without the variable.
 * The LoRA layer's own hot path runs no ND4J op between its products, so it is not exposed itself.
 */
public class OmpInterleaveBenchmark extends LayerBenchmark {
    private INDArray x;    // [n, in] 'f'
    private INDArray h;    // [n, in] 'f', the element-wise op's output and the product's input
    private INDArray w;    // [out, in] 'f'
    private INDArray out;  // [n, out] 'f'

    @Setup
    public void setUp() {
        x = uniformF(TOKENS, d, 1.0, 1);
        h = outputF(TOKENS, d);
        w = uniformF(d, d, 1.0 / Math.sqrt(d), 2);
        out = outputF(TOKENS, d);
        elementwiseThenProduct();
        check("element-wise then product", out, referenceForward(x, w, null, null, 0));
    }

    /** One ND4J element-wise op over [n, d] (a copy, standing in for a residual add or an activation). */
    @Benchmark
    public INDArray elementwiseAlone() {
        h.assign(x);
        return h;
    }

    /** The same op, then the base product reading its output. */
    @Benchmark
    public INDArray elementwiseThenProduct() {
        h.assign(x);
        Nd4j.gemm(h, w, out, false, true, 1.0, 0.0);
        return out;
    }
}

package org.lora4j.bench;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraLinear;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;

/**
 * The usual (loralib / PEFT) formulation as three gemm calls into preallocated buffers, for
 * reference: {@code out = x Wᵀ}; {@code t = x Aᵀ}; {@code out += s · t Bᵀ} (beta = 1). The last
 * call reads and writes all of {@code out} a second time, the pass LoraLinear's concatenated
 * product avoids. Same weights as {@link LoraForwardBenchmark}.
 */
public class PlainChainBenchmark extends LayerBenchmark {
    @Param({"1", "8", "16", "64"})
    public int rank;

    private INDArray x;    // [n, in] 'f'
    private INDArray w;    // [out, in] 'f'
    private INDArray a;    // [r, in] 'f'
    private INDArray b;    // [out, r] 'f'
    private double scaling;
    private INDArray t;    // [n, r] 'f'
    private INDArray out;  // [n, out] 'f'

    @Setup
    public void setUp() {
        LoraLinear layer = newLayer(2);
        addRandomAdapter(layer, rank, 3);
        LoraAdapter ad = layer.activeAdapter();
        x = uniformF(TOKENS, d, 1.0, 1);
        w = layer.weight().dup('f');
        a = ad.a().dup('f');
        b = ad.b().dup('f');
        scaling = ad.scaling();
        t = outputF(TOKENS, rank);
        out = outputF(TOKENS, d);

        plainChain();
        check("plain chain", out, referenceForward(x, w, a, b, scaling));
    }

    @Benchmark
    public INDArray plainChain() {
        Nd4j.gemm(x, w, out, false, true, 1.0, 0.0);        // out = x Wᵀ        [n, out]
        Nd4j.gemm(x, a, t, false, true, 1.0, 0.0);          // t = x Aᵀ          [n, r]
        Nd4j.gemm(t, b, out, false, true, scaling, 1.0);    // out += s · t Bᵀ   [n, out]
        return out;
    }
}

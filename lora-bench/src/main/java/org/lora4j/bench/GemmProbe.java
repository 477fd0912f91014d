package org.lora4j.bench;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.openblas.global.openblas_nolapack;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Quick median timings of single gemm calls in the layouts the benchmarks use, outside JMH: a
 * check of the machine (is a base product where FACTS.md says it should be?) before trusting a run.
 *
 * <p>Run: {@code java -cp lora-bench/target/benchmarks.jar org.lora4j.bench.GemmProbe [d]}
 */
public final class GemmProbe {
    private GemmProbe() {
    }

    public static void main(String[] args) {
        int d = args.length > 0 ? Integer.parseInt(args[0]) : 1024;
        int n = LayerBenchmark.TOKENS;
        INDArray x = LayerBenchmark.uniformF(n, d, 1.0, 1);
        INDArray w = LayerBenchmark.uniformF(d, d, 1.0 / Math.sqrt(d), 2);
        INDArray dOut = LayerBenchmark.uniformF(n, d, 1.0, 4);
        INDArray out = LayerBenchmark.outputF(n, d);
        INDArray dX = LayerBenchmark.outputF(n, d);
        double gflop = 2.0 * n * d * d / 1e9;
        // OpenBLAS directly, the way lora-core's internal Blas calls it; pointers made once.
        FloatPointer px = new FloatPointer(x.data().addressPointer());
        FloatPointer pw = new FloatPointer(w.data().addressPointer());
        FloatPointer pout = new FloatPointer(out.data().addressPointer());
        Runnable cblas = () -> openblas_nolapack.cblas_sgemm(openblas_nolapack.CblasColMajor,
                openblas_nolapack.CblasNoTrans, openblas_nolapack.CblasTrans, n, d, d, 1f, px, n, pw, d, 0f, pout, n);
        for (int round = 0; round < 3; round++) {
            time("x Wᵀ    cblas_sgemm directly, beta 0", gflop, cblas);
            time("x Wᵀ    gemm(x, W, out, false, true), beta 1", gflop, () -> Nd4j.gemm(x, w, out, false, true, 1.0, 1.0));
            time("x Wᵀ    gemm(x, W, out, false, true)", gflop, () -> Nd4j.gemm(x, w, out, false, true, 1.0, 0.0));
            time("dOut W  gemm(dOut, W, dX, false, false)", gflop, () -> Nd4j.gemm(dOut, w, dX, false, false, 1.0, 0.0));
            time("x Wᵀ then dOut W", 2 * gflop, () -> {
                Nd4j.gemm(x, w, out, false, true, 1.0, 0.0);
                Nd4j.gemm(dOut, w, dX, false, false, 1.0, 0.0);
            });
        }
    }

    static void time(String what, double gflop, Runnable call) {
        for (int i = 0; i < 3; i++) {
            call.run();
        }
        long[] t = new long[15];
        for (int i = 0; i < t.length; i++) {
            long s = System.nanoTime();
            call.run();
            t[i] = System.nanoTime() - s;
        }
        java.util.Arrays.sort(t);
        double ms = t[t.length / 2] / 1e6;
        System.out.printf("%9.3f ms  %6.1f GFLOP/s  min %8.3f  max %8.3f  %s%n", ms, gflop / ms * 1e3,
                t[0] / 1e6, t[t.length - 1] / 1e6, what);
    }
}

package org.lora4j.bench;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.openblas.global.openblas_nolapack;
import org.bytedeco.javacpp.Pointer;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.LoraLinear;
import org.lora4j.core.internal.NativeBuffer;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.lang.management.ManagementFactory;

/**
 * Attributes the Java heap bytes a layer call allocates to its parts, by counting this thread's
 * allocation (HotSpot's per-thread counter, exact to the byte after warm-up) around many calls of
 * each part alone. Complements {@code -prof gc}, which reports only the total per benchmark call.
 *
 * <p>Run: {@code java -cp lora-bench/target/benchmarks.jar org.lora4j.bench.AllocationProbe [d] [rank] [calls]}
 * (defaults 256, 8, 1000: the bytes do not depend on d, the run time does).
 */
public final class AllocationProbe {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private static int calls = 1_000;

    private AllocationProbe() {
    }

    public static void main(String[] args) {
        int d = args.length > 0 ? Integer.parseInt(args[0]) : 256;
        int rank = args.length > 1 ? Integer.parseInt(args[1]) : 8;
        calls = args.length > 2 ? Integer.parseInt(args[2]) : calls;
        int n = LayerBenchmark.TOKENS;
        INDArray w = LayerBenchmark.uniformF(d, d, 1.0 / Math.sqrt(d), 2);
        INDArray x = LayerBenchmark.uniformF(n, d, 1.0, 1);
        INDArray out = LayerBenchmark.outputF(n, d);
        INDArray dOut = LayerBenchmark.uniformF(n, d, 1.0, 4);
        INDArray dX = LayerBenchmark.outputF(n, d);
        INDArray t = LayerBenchmark.outputF(n, rank);

        LoraLinear layer = new LoraLinear("probe", w, null);
        layer.addAdapter("probe", LoraConfig.of(rank, 16, "proj").withInit(LoraConfig.Init.RANDOM), 3);
        INDArray xOwn = layer.inputBuffer(n);
        xOwn.assign(x);
        INDArray a = layer.activeAdapter().a();
        INDArray b = layer.activeAdapter().b();
        INDArray wide = LayerBenchmark.outputF(n, d + rank);   // like the layer's xcat

        System.out.printf("d = %d, n = %d, rank = %d; Java heap bytes per call (mean of %d calls)%n", d, n, rank, calls);
        report("Nd4j.gemm, plain 'f' operands (base product)", () -> Nd4j.gemm(x, w, out, false, true, 1.0, 0.0));
        report("Nd4j.gemm, t = x Aᵀ ([n, r] output)", () -> Nd4j.gemm(x, a, t, false, true, 1.0, 0.0));
        report("  of which: new Mmul(..) with its MMulTranspose", () ->
                new Mmul(x, w, out, 1.0, 0.0, MMulTranspose.builder().transposeA(false).transposeB(true).build()));
        Mmul prebuilt = new Mmul(x, w, out, 1.0, 0.0, MMulTranspose.builder().transposeA(false).transposeB(true).build());
        report("  of which: Nd4j.exec(the same Mmul again)", () -> Nd4j.exec(prebuilt));
        // The proposed fix: OpenBLAS's cblas_sgemm (the library ND4J itself calls) with pointers
        // made once per buffer. Column-major: out[n, d] = x[n, d] · w[d, d]ᵀ.
        FloatPointer px = new FloatPointer(x.data().addressPointer());
        FloatPointer pw = new FloatPointer(w.data().addressPointer());
        FloatPointer pout = new FloatPointer(out.data().addressPointer());
        INDArray check = LayerBenchmark.outputF(n, d);
        Nd4j.gemm(x, w, check, false, true, 1.0, 0.0);
        openblas_nolapack.cblas_sgemm(openblas_nolapack.CblasColMajor, openblas_nolapack.CblasNoTrans,
                openblas_nolapack.CblasTrans, n, d, d, 1f, px, n, pw, d, 0f, pout, n);
        if (!check.equalsWithEps(out, 1e-4)) {
            throw new IllegalStateException("cblas_sgemm disagrees with Nd4j.gemm");
        }
        report("openblas cblas_sgemm, pointers made once (proposed)", () ->
                openblas_nolapack.cblas_sgemm(openblas_nolapack.CblasColMajor, openblas_nolapack.CblasNoTrans,
                        openblas_nolapack.CblasTrans, n, d, d, 1f, px, n, pw, d, 0f, pout, n));
        time("Nd4j.gemm base product", () -> Nd4j.gemm(x, w, out, false, true, 1.0, 0.0));
        time("cblas_sgemm base product", () ->
                openblas_nolapack.cblas_sgemm(openblas_nolapack.CblasColMajor, openblas_nolapack.CblasNoTrans,
                        openblas_nolapack.CblasTrans, n, d, d, 1f, px, n, pw, d, 0f, pout, n));
        time("Nd4j.gemm base product (again)", () -> Nd4j.gemm(x, w, out, false, true, 1.0, 0.0));
        time("cblas_sgemm base product (again)", () ->
                openblas_nolapack.cblas_sgemm(openblas_nolapack.CblasColMajor, openblas_nolapack.CblasNoTrans,
                        openblas_nolapack.CblasTrans, n, d, d, 1f, px, n, pw, d, 0f, pout, n));
        report("m.get(all(), interval(0, k)) column view", () -> wide.get(NDArrayIndex.all(), NDArrayIndex.interval(0, d)));
        report("NDArrayIndex.all() + interval(0, k) alone", () -> {
            NDArrayIndex.all();
            NDArrayIndex.interval(0, d);
        });
        report("data().addressPointer()", () -> t.data().addressPointer());
        report("new BytePointer(addressPointer()).position(..)", () ->
                new BytePointer(t.data().addressPointer()).position(8));
        report("one-shot copy (2 BytePointer + memcpy)", () -> {
            Pointer from = new BytePointer(t.data().addressPointer()).position(0);
            Pointer to = new BytePointer(wide.data().addressPointer()).position((long) n * d * 4);
            Pointer.memcpy(to, from, (long) n * rank * 4);
        });
        NativeBuffer tBuf = NativeBuffer.of(t);
        NativeBuffer wideBuf = NativeBuffer.of(wide);
        report("NativeBuffer.copyTo, buffers looked up once (LoraLinear's copies)", () ->
                tBuf.copyTo(0, wideBuf, (long) n * d, (long) n * rank));
        report("NativeBuffer.of(array)", () -> NativeBuffer.of(t));
        report("INDArray.shape() (checkRows/checkOutput use size(), not shape())", x::shape);
        report("isView() + offset() + ordering()", () -> {
            out.isView();
            out.offset();
            out.ordering();
        });
        report("LoraLinear.forward, x = inputBuffer", () -> layer.forward(xOwn, out));
        report("LoraLinear.forward, x separate", () -> layer.forward(x, out));
        report("LoraLinear.forward + backward (frozen)", () -> {
            layer.forward(xOwn, out);
            layer.backward(dOut, dX);
        });
        layer.merge();
        report("LoraLinear.forward, merged, x = inputBuffer", () -> layer.forward(xOwn, out));
        LoraLinear full = new LoraLinear("full", w, null);
        full.setWeightsTrainable(true);
        INDArray xFull = full.inputBuffer(n);
        xFull.assign(x);
        report("LoraLinear.forward + backward (full, no adapter)", () -> {
            full.forward(xFull, out);
            full.backward(dOut, dX);
        });
    }

    /** Median wall time of 31 calls after 5 warm-up calls; a side check, JMH does the real timing. */
    private static void time(String what, Runnable call) {
        for (int i = 0; i < 5; i++) {
            call.run();
        }
        long[] t = new long[31];
        for (int i = 0; i < t.length; i++) {
            long s = System.nanoTime();
            call.run();
            t[i] = System.nanoTime() - s;
        }
        java.util.Arrays.sort(t);
        System.out.printf("%10.3f ms  %s (median of %d)%n", t[t.length / 2] / 1e6, what, t.length);
    }

    private static void report(String what, Runnable call) {
        for (int i = 0; i < calls; i++) {   // warm-up: class loading, JIT, escape analysis
            call.run();
        }
        long tid = Thread.currentThread().getId();
        long before = THREADS.getThreadAllocatedBytes(tid);
        for (int i = 0; i < calls; i++) {
            call.run();
        }
        long bytes = THREADS.getThreadAllocatedBytes(tid) - before;
        System.out.printf("%10.1f  %s%n", (double) bytes / calls, what);
    }
}

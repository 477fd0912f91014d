package org.lora4j.train.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.openblas.global.openblas_nolapack;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;

/**
 * Native memory of ND4J arrays, seen from Java: copies to and from double[] (where the model's
 * element-wise parts run as fused loops, {@link Kernels}) and BLAS gemm on blocks inside the
 * buffers (attention's per-head products).
 *
 * <p>Why: each ND4J op costs 10-20 us of dispatch and ND4J's softmax/permute measured 4-5 ms on a
 * [8, 8, 128, 128] tensor here, against about 0.2 ms to copy 704k floats through an NIO view. The
 * Java side always computes in double, so one set of loops serves FLOAT models and the DOUBLE
 * models of the gradient checks.
 */
final class Host {
    private Host() {
    }

    /** Copies the first {@code count} elements of {@code a}'s memory (from its offset) into dst. */
    static void read(INDArray a, double[] dst, int count) {
        new Mem(a).read(0, dst, 0, count);
    }

    /**
     * Per-thread staging for FLOAT arrays: a bulk NIO copy plus a widening loop over a float[] ran
     * about twice as fast here as element-wise FloatBuffer.get/put.
     */
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[4096]);

    /**
     * An ND4J array's memory, looked up once: each {@code data().asNio()} or {@code addressPointer()}
     * is a JNI call, and attention makes thousands of small accesses and gemm calls a step.
     * Positions are elements from the array's offset. Holds the array: its memory is freed when the
     * array is collected.
     */
    static final class Mem {
        private final INDArray array;  // keeps the memory alive
        final DataType type;
        final long length;          // elements from the array's offset to the end of its buffer
        private final Pointer base; // typed (FloatPointer/DoublePointer), positioned at the array's offset
        private final FloatBuffer f;
        private final DoubleBuffer d;
        private final int start;    // the array's offset in f / d

        Mem(INDArray a) {
            array = a;
            type = a.dataType();
            if (type != DataType.FLOAT && type != DataType.DOUBLE) {
                throw new IllegalArgumentException("unsupported data type " + type);
            }
            // ND4J is inconsistent here: a view's data().addressPointer() already points at the view's
            // first element (data().offset() == offset()), while data().asNio() spans the whole
            // original buffer from its start. So the pointer skips only what the buffer does not
            // already include, and the NIO index is offset() itself.
            long skip = a.offset() - a.data().offset();
            length = a.data().length() - skip;
            Pointer p = a.data().addressPointer();
            long at = p.position() + skip;
            base = type == DataType.FLOAT ? new FloatPointer(p).position(at) : new DoublePointer(p).position(at);
            java.nio.ByteBuffer bytes = a.data().asNio().order(ByteOrder.nativeOrder());
            f = type == DataType.FLOAT ? bytes.asFloatBuffer() : null;
            d = type == DataType.DOUBLE ? bytes.asDoubleBuffer() : null;
            start = Math.toIntExact(a.offset());
        }

        private Pointer at(long from) {
            return type == DataType.FLOAT ? new FloatPointer(base).position(base.position() + from)
                    : new DoublePointer(base).position(base.position() + from);
        }

        private void check(long from, int count, String what) {
            if (from < 0 || from + count > length) {
                throw new IllegalArgumentException(what + " of " + count + " elements at " + from + " overruns "
                        + length + " elements");
            }
        }

        /** dst[dstOff, dstOff + count) = elements [from, from + count). */
        void read(long from, double[] dst, int dstOff, int count) {
            check(from, count, "read");
            int base0 = start + (int) from;
            if (f != null) {
                float[] tmp = FLOATS.get();
                for (int done = 0; done < count; done += tmp.length) {
                    int m = Math.min(tmp.length, count - done);
                    f.get(base0 + done, tmp, 0, m);    // a bulk copy, then a plain widening loop
                    int o = dstOff + done;
                    for (int i = 0; i < m; i++) {
                        dst[o + i] = tmp[i];
                    }
                }
            } else {
                d.get(base0, dst, dstOff, count);
            }
        }

        /** Elements [from, from + count) = src[srcOff, srcOff + count). */
        void write(double[] src, int srcOff, long from, int count) {
            check(from, count, "write");
            int base0 = start + (int) from;
            if (f != null) {
                float[] tmp = FLOATS.get();
                for (int done = 0; done < count; done += tmp.length) {
                    int m = Math.min(tmp.length, count - done);
                    int o = srcOff + done;
                    for (int i = 0; i < m; i++) {
                        tmp[i] = (float) src[o + i];
                    }
                    f.put(base0 + done, tmp, 0, m);
                }
            } else {
                d.put(base0, src, srcOff, count);
            }
        }
    }

    /** Copies {@code count} elements from src (element {@code srcFrom}) to dst (element {@code dstFrom}); same type. */
    static void copy(INDArray src, long srcFrom, INDArray dst, long dstFrom, int count) {
        if (src.dataType() != dst.dataType()) {
            throw new IllegalArgumentException("copy from " + src.dataType() + " to " + dst.dataType());
        }
        if (src.offset() + srcFrom + count > src.data().length() || dst.offset() + dstFrom + count > dst.data().length()) {
            throw new IllegalArgumentException("copy of " + count + " elements overruns a buffer");
        }
        int w = src.dataType().width();
        dst.data().asNio().put(Math.toIntExact((dst.offset() + dstFrom) * w), src.data().asNio(),
                Math.toIntExact((src.offset() + srcFrom) * w), count * w);
    }

    /**
     * BLAS gemm on column-major blocks inside ND4J buffers, without copies or views:
     * {@code C = alpha · op(A) · op(B) + beta · C}, op(A) [m, k], op(B) [k, n], C [m, n]; each block
     * starts at an element position and has its leading dimension.
     *
     * <p>Why not {@code Nd4j.gemm}: attention multiplies 64 x 64 x 32 blocks, thousands a step; as
     * ND4J views each would cost a view and an op dispatch (10-20 us, FACTS.md), here one JNI call
     * into the same OpenBLAS ND4J uses. OpenBLAS is thread-safe, and runs products this small on
     * the calling thread.
     */
    static void gemm(boolean transA, boolean transB, int m, int n, int k, double alpha,
                     Mem a, long aFrom, int lda, Mem b, long bFrom, int ldb, double beta, Mem c, long cFrom, int ldc) {
        if (a.type != c.type || b.type != c.type) {
            throw new IllegalArgumentException("gemm of " + a.type + " x " + b.type + " into " + c.type);
        }
        int ta = transA ? openblas_nolapack.CblasTrans : openblas_nolapack.CblasNoTrans;
        int tb = transB ? openblas_nolapack.CblasTrans : openblas_nolapack.CblasNoTrans;
        int order = openblas_nolapack.CblasColMajor;
        if (c.type == DataType.FLOAT) {
            openblas_nolapack.cblas_sgemm(order, ta, tb, m, n, k, (float) alpha, (FloatPointer) a.at(aFrom), lda,
                    (FloatPointer) b.at(bFrom), ldb, (float) beta, (FloatPointer) c.at(cFrom), ldc);
        } else {
            openblas_nolapack.cblas_dgemm(order, ta, tb, m, n, k, alpha, (DoublePointer) a.at(aFrom), lda,
                    (DoublePointer) b.at(bFrom), ldb, beta, (DoublePointer) c.at(cFrom), ldc);
        }
    }

    /** Writes src[0, count) into a's memory from its offset. */
    static void write(double[] src, INDArray a, int count) {
        new Mem(a).write(src, 0, 0, count);
    }

    /** Adds src[0, count) into a's memory from its offset. */
    static void add(double[] src, INDArray a, int count) {
        long off = a.offset();
        if (a.dataType() == DataType.FLOAT) {
            FloatBuffer fb = a.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
            int base = Math.toIntExact(off);
            for (int i = 0; i < count; i++) {
                fb.put(base + i, (float) (fb.get(base + i) + src[i]));
            }
        } else {
            DoubleBuffer db = a.data().asNio().order(ByteOrder.nativeOrder()).asDoubleBuffer();
            int base = Math.toIntExact(off);
            for (int i = 0; i < count; i++) {
                db.put(base + i, db.get(base + i) + src[i]);
            }
        }
    }

    /** Random access to an array's memory as doubles (for the embedding table's rows). */
    interface Access {
        double get(long i);

        void put(long i, double v);
    }

    static Access access(INDArray a) {
        int base = Math.toIntExact(a.offset());
        if (a.dataType() == DataType.FLOAT) {
            FloatBuffer fb = a.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
            return new Access() {
                public double get(long i) {
                    return fb.get(base + (int) i);
                }

                public void put(long i, double v) {
                    fb.put(base + (int) i, (float) v);
                }
            };
        }
        DoubleBuffer db = a.data().asNio().order(ByteOrder.nativeOrder()).asDoubleBuffer();
        return new Access() {
            public double get(long i) {
                return db.get(base + (int) i);
            }

            public void put(long i, double v) {
                db.put(base + (int) i, v);
            }
        };
    }
}

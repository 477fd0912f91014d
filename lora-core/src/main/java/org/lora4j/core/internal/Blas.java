package org.lora4j.core.internal;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.openblas.global.openblas_nolapack;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;

/**
 * Matrix products straight into OpenBLAS's {@code cblas_?gemm}, the routine ND4J's own
 * {@code Nd4j.gemm} ends in: on whole matrices described once ({@link Operand}), or on column-major
 * blocks inside {@link NativeBuffer}s given by element position and leading dimension.
 *
 * <p>Why not {@code Nd4j.gemm} on the hot path: each call allocates about 6 KB of Java objects
 * (views, op descriptors, pointers) and costs 10-20 microseconds of dispatch before the BLAS call
 * (docs/performance.md). An operand holds the pointer and leading dimension of one matrix, so a
 * layer that keeps its operands allocates nothing per product; attention multiplies thousands of
 * small blocks a step, each one JNI call here instead of a view and an op. OpenBLAS is
 * thread-safe and runs products that small on the calling thread.
 */
public final class Blas {
    private static final int COL_MAJOR = openblas_nolapack.CblasColMajor;
    private static final int NO_TRANS = openblas_nolapack.CblasNoTrans;
    private static final int TRANS = openblas_nolapack.CblasTrans;

    private Blas() {
    }

    /**
     * One matrix (rank 2, FLOAT or DOUBLE, unit stride along one dimension: 'c', 'f', or a row or
     * column block of either) as BLAS reads it: the address of its first element, whether it is
     * stored by columns, and its leading dimension.
     */
    public static final class Operand {
        private final INDArray array;   // keeps the memory alive
        private final Pointer pointer;
        private final boolean columnMajor;
        private final int ld;
        private final long rows;
        private final long cols;
        private final boolean isDouble;

        private Operand(INDArray a) {
            if (a.rank() != 2) {
                throw new IllegalArgumentException("gemm operand must be a matrix, got shape " + Arrays.toString(a.shape()));
            }
            this.pointer = NativeBuffer.firstElement(a);   // also refuses types other than FLOAT and DOUBLE
            this.array = a;
            this.rows = a.size(0);
            this.cols = a.size(1);
            this.isDouble = pointer instanceof DoublePointer;
            long s0 = a.stride(0);
            long s1 = a.stride(1);
            if ((s0 == 1 || rows == 1) && (s1 >= Math.max(1, rows) || cols == 1)) {
                columnMajor = true;
                ld = (int) Math.max(1, cols == 1 ? Math.max(rows, 1) : s1);
            } else if ((s1 == 1 || cols == 1) && (s0 >= Math.max(1, cols) || rows == 1)) {
                columnMajor = false;
                ld = (int) Math.max(1, rows == 1 ? Math.max(cols, 1) : s0);
            } else {
                throw new IllegalArgumentException("gemm operand must have unit stride along one dimension, got strides "
                        + Arrays.toString(a.stride()) + " for shape " + Arrays.toString(a.shape()));
            }
        }

        /** The matrix described. */
        public INDArray array() {
            return array;
        }
    }

    /** The BLAS description of {@code a}; keep it while {@code a}'s memory and strides stay. */
    public static Operand operand(INDArray a) {
        return new Operand(a);
    }

    /**
     * {@code c = alpha · op(a) · op(b) + beta · c}, with op the transpose when asked. {@code c} must
     * be stored by columns ('f' order, or a column block of an 'f' matrix). Allocates nothing.
     */
    public static void gemm(Operand a, boolean transA, Operand b, boolean transB, Operand c, double alpha, double beta) {
        if (!c.columnMajor) {
            throw new IllegalArgumentException("gemm output must be column-major ('f'), got strides "
                    + Arrays.toString(c.array.stride()) + " for shape " + Arrays.toString(c.array.shape()));
        }
        long m = transA ? a.cols : a.rows;
        long k = transA ? a.rows : a.cols;
        long kb = transB ? b.cols : b.rows;
        long n = transB ? b.rows : b.cols;
        if (k != kb || m != c.rows || n != c.cols || a.isDouble != c.isDouble || b.isDouble != c.isDouble) {
            throw new IllegalArgumentException("gemm shapes do not fit: " + describe(a, transA) + " x "
                    + describe(b, transB) + " -> " + describe(c, false));
        }
        // A row-major operand is the column-major storage of its transpose: flip the flag instead of copying.
        int ta = (transA ^ !a.columnMajor) ? TRANS : NO_TRANS;
        int tb = (transB ^ !b.columnMajor) ? TRANS : NO_TRANS;
        if (c.isDouble) {
            openblas_nolapack.cblas_dgemm(COL_MAJOR, ta, tb, (int) m, (int) n, (int) k, alpha,
                    (DoublePointer) a.pointer, a.ld, (DoublePointer) b.pointer, b.ld, beta, (DoublePointer) c.pointer, c.ld);
        } else {
            openblas_nolapack.cblas_sgemm(COL_MAJOR, ta, tb, (int) m, (int) n, (int) k, (float) alpha,
                    (FloatPointer) a.pointer, a.ld, (FloatPointer) b.pointer, b.ld, (float) beta, (FloatPointer) c.pointer, c.ld);
        }
    }

    private static String describe(Operand o, boolean trans) {
        return Arrays.toString(o.array.shape()) + (trans ? "ᵀ" : "") + " " + o.array.dataType();
    }

    /**
     * BLAS gemm on column-major blocks inside native buffers, without copies or views:
     * {@code C = alpha · op(A) · op(B) + beta · C}, op(A) [m, k], op(B) [k, n], C [m, n]. Each block
     * starts at an element position of its buffer and has its leading dimension (the distance
     * between its columns); A is stored [m, k] or, transposed, [k, m], likewise B. Every block is
     * checked to lie inside its buffer. Allocates nothing (see {@link #BLOCK_POINTERS}).
     */
    public static void gemm(boolean transA, boolean transB, int m, int n, int k, double alpha,
                            NativeBuffer a, long aFrom, int lda, NativeBuffer b, long bFrom, int ldb,
                            double beta, NativeBuffer c, long cFrom, int ldc) {
        if (a.type() != c.type() || b.type() != c.type()) {
            throw new IllegalArgumentException("gemm of " + a.type() + " x " + b.type() + " into " + c.type());
        }
        if (m < 0 || n < 0 || k < 0) {
            throw new IllegalArgumentException("gemm sizes must be >= 0, got m " + m + ", n " + n + ", k " + k);
        }
        checkBlock("A", a, aFrom, transA ? k : m, transA ? m : k, lda);
        checkBlock("B", b, bFrom, transB ? n : k, transB ? k : n, ldb);
        checkBlock("C", c, cFrom, m, n, ldc);
        int ta = transA ? TRANS : NO_TRANS;
        int tb = transB ? TRANS : NO_TRANS;
        BlockPointers p = BLOCK_POINTERS.get();
        if (c.isDouble()) {
            openblas_nolapack.cblas_dgemm(COL_MAJOR, ta, tb, m, n, k, alpha, p.da.at(a, aFrom, Double.BYTES), lda,
                    p.db.at(b, bFrom, Double.BYTES), ldb, beta, p.dc.at(c, cFrom, Double.BYTES), ldc);
        } else {
            openblas_nolapack.cblas_sgemm(COL_MAJOR, ta, tb, m, n, k, (float) alpha, p.fa.at(a, aFrom, Float.BYTES), lda,
                    p.fb.at(b, bFrom, Float.BYTES), ldb, (float) beta, p.fc.at(c, cFrom, Float.BYTES), ldc);
        }
    }

    /**
     * Pointers for the block products, one set per thread and reused: JavaCPP hands BLAS the address
     * a pointer object holds, so re-aiming one object per operand replaces the three objects a call
     * made (attention makes thousands of block products a step). Each thread has its own set, and a
     * call ends before the thread makes the next, so no pointer is re-aimed while BLAS reads it.
     */
    private static final ThreadLocal<BlockPointers> BLOCK_POINTERS = ThreadLocal.withInitial(BlockPointers::new);

    private static final class BlockPointers {
        final FloatAt fa = new FloatAt();
        final FloatAt fb = new FloatAt();
        final FloatAt fc = new FloatAt();
        final DoubleAt da = new DoubleAt();
        final DoubleAt db = new DoubleAt();
        final DoubleAt dc = new DoubleAt();
    }

    /** A FloatPointer re-aimed at element {@code from} of a buffer (whose range the caller checked). */
    private static final class FloatAt extends FloatPointer {
        FloatAt at(NativeBuffer buf, long from, int bytes) {
            address = buf.pointer(0).address() + from * bytes;
            return this;
        }
    }

    /** As {@link FloatAt} for doubles. */
    private static final class DoubleAt extends DoublePointer {
        DoubleAt at(NativeBuffer buf, long from, int bytes) {
            address = buf.pointer(0).address() + from * bytes;
            return this;
        }
    }

    /** A column-major block of rows x cols at element {@code from} with leading dimension ld lies inside buf. */
    private static void checkBlock(String name, NativeBuffer buf, long from, int rows, int cols, int ld) {
        if (ld < Math.max(1, rows)) {
            throw new IllegalArgumentException("gemm block " + name + " of " + rows + " x " + cols
                    + " needs a leading dimension >= " + Math.max(1, rows) + ", got " + ld);
        }
        long extent = rows == 0 || cols == 0 ? 0 : (long) (cols - 1) * ld + rows;
        if (from < 0 || from > buf.length() - extent) {
            throw new IndexOutOfBoundsException("gemm block " + name + " of " + rows + " x " + cols
                    + " with leading dimension " + ld + " at element " + from + " spans " + extent
                    + " elements, past the end of a buffer of " + buf.length());
        }
    }
}

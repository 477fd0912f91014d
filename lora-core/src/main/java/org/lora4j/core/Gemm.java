package org.lora4j.core;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.openblas.global.openblas_nolapack;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;

/**
 * Matrix products straight into OpenBLAS's {@code cblas_?gemm}, the routine ND4J's own
 * {@code Nd4j.gemm} ends in, with the operand descriptions built once and reused.
 *
 * <p>Why not {@code Nd4j.gemm} on the hot path: each call allocates about 6 KB of Java objects
 * (views, op descriptors, pointers) and costs 10-20 microseconds of dispatch before the BLAS call
 * (docs/performance.md). An {@link Operand} holds the pointer and leading dimension of one matrix, so
 * a layer that keeps its operands makes no allocation per product.
 */
final class Gemm {
    private static final int COL_MAJOR = openblas_nolapack.CblasColMajor;
    private static final int NO_TRANS = openblas_nolapack.CblasNoTrans;
    private static final int TRANS = openblas_nolapack.CblasTrans;

    private Gemm() {
    }

    /** One matrix as BLAS reads it: its address, whether it is stored by columns, and its leading dimension. */
    static final class Operand {
        final INDArray array;
        final Pointer pointer;
        final boolean columnMajor;
        final int ld;
        final long rows;
        final long cols;
        final boolean isDouble;

        private Operand(INDArray a) {
            if (a.rank() != 2) {
                throw new IllegalArgumentException("gemm operand must be a matrix, got shape " + Arrays.toString(a.shape()));
            }
            DataType t = a.dataType();
            if (t != DataType.FLOAT && t != DataType.DOUBLE) {
                throw new IllegalArgumentException("gemm operand must be FLOAT or DOUBLE, got " + t);
            }
            this.array = a;
            this.rows = a.size(0);
            this.cols = a.size(1);
            this.isDouble = t == DataType.DOUBLE;
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
            Pointer base = a.data().addressPointer();
            long skip = NativeCopy.elementsToFirst(a);
            this.pointer = isDouble ? new DoublePointer(base).position(skip) : new FloatPointer(base).position(skip);
        }
    }

    static Operand of(INDArray a) {
        return new Operand(a);
    }

    /**
     * {@code c = alpha · op(a) · op(b) + beta · c}, with op the transpose when asked. {@code c} must
     * be stored by columns ('f' order, or a column block of an 'f' matrix).
     */
    static void gemm(Operand a, boolean transA, Operand b, boolean transB, Operand c, double alpha, double beta) {
        if (!c.columnMajor) {
            throw new IllegalArgumentException("gemm output must be column-major ('f'), got strides "
                    + Arrays.toString(c.array.stride()));
        }
        long m = transA ? a.cols : a.rows;
        long k = transA ? a.rows : a.cols;
        long kb = transB ? b.cols : b.rows;
        long n = transB ? b.rows : b.cols;
        if (k != kb || m != c.rows || n != c.cols || a.isDouble != c.isDouble || b.isDouble != c.isDouble) {
            throw new IllegalArgumentException("gemm shapes do not fit: " + Arrays.toString(a.array.shape())
                    + (transA ? "ᵀ" : "") + " x " + Arrays.toString(b.array.shape()) + (transB ? "ᵀ" : "")
                    + " -> " + Arrays.toString(c.array.shape()));
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
}

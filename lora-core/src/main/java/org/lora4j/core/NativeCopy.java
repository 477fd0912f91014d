package org.lora4j.core;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Copies between contiguous ND4J buffers with a plain memcpy.
 *
 * <p>Why not {@code assign}: an ND4J element-wise op between two OpenBLAS gemm calls leaves the
 * OpenMP worker threads spinning, and on two cores the next gemm then ran 2x slower (measured,
 * docs/performance.md). A memcpy uses no thread pool, and the hot path only ever copies whole
 * contiguous blocks.
 */
final class NativeCopy {
    private NativeCopy() {
    }

    /**
     * How many elements past {@code a.data().addressPointer()} the array's first element lies. A view
     * made by indexing gets a data buffer that is itself a view, whose address already is the first
     * element (its offset counted once); an array created over a buffer at an offset does not. Adding
     * {@code a.offset()} blindly counts it twice for the first kind, and writes past the buffer.
     */
    static long elementsToFirst(INDArray a) {
        return a.offset() - a.data().offset();
    }

    /** A copy between two fixed buffers, with its pointers made once: running it allocates nothing. */
    static final class Plan {
        private final Pointer from;
        private final Pointer to;
        private final long bytes;

        Plan(INDArray src, INDArray dst, long dstElementOffset) {
            long elementSize = src.dataType().width();
            if (src.dataType() != dst.dataType()
                    || elementsToFirst(dst) + dstElementOffset + src.length() > dst.data().length()) {
                throw new IllegalArgumentException("copy of " + src.length() + " " + src.dataType() + " at offset "
                        + dstElementOffset + " into " + dst.data().length() + " " + dst.dataType());
            }
            this.from = new BytePointer(src.data().addressPointer()).position(elementsToFirst(src) * elementSize);
            this.to = new BytePointer(dst.data().addressPointer())
                    .position((elementsToFirst(dst) + dstElementOffset) * elementSize);
            this.bytes = src.length() * elementSize;
        }

        void run() {
            Pointer.memcpy(to, from, bytes);
        }
    }

    /** Whether the array's elements occupy one contiguous block in column-major ('f') order. */
    static boolean isContiguousF(INDArray a) {
        if (a.rank() != 2) {
            return false;
        }
        long rows = a.size(0);
        long cols = a.size(1);
        return (a.stride(0) == 1 || rows == 1) && (a.stride(1) == rows || cols == 1);
    }
}

package org.lora4j.core;

import org.bytedeco.javacpp.BytePointer;
import org.lora4j.core.internal.NativeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Byte-level access to the off-heap buffer of an ND4J array, for the safetensors reader and writer.
 *
 * <p>Arrays are visited through {@link ByteBuffer} windows over their native memory, so no tensor
 * is ever copied to the Java heap whole, and tensors larger than 2 GB (beyond one ByteBuffer) work.
 * The safetensors format is little-endian and ND4J's native builds exist only for little-endian
 * platforms, so bytes move without swapping; {@link #checkLittleEndian()} refuses anything else
 * rather than silently writing byte-swapped files.
 */
final class TensorBytes {
    /** Bytes per window: a multiple of every element size, small enough for an int-indexed buffer. */
    static final int WINDOW_BYTES = 1 << 26;

    private TensorBytes() {
    }

    @FunctionalInterface
    interface WindowVisitor {
        /** @param window the next bytes of the array, native (little-endian) order, position 0 */
        void visit(ByteBuffer window) throws IOException;
    }

    static void checkLittleEndian() {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("safetensors I/O needs a little-endian platform, this one is "
                    + ByteOrder.nativeOrder());
        }
    }

    /**
     * The array itself when its elements already form one 'c'-order block in its buffer, else a
     * 'c'-order copy. Safetensors stores C order, and only a contiguous block can be streamed.
     */
    static INDArray contiguousC(INDArray a) {
        if (a.isEmpty()) {
            return a;
        }
        boolean inBuffer = a.data().length() >= NativeBuffer.elementsToFirst(a) + a.length();
        boolean cStrides = a.rank() == 0
                || (a.ordering() == 'c' && Arrays.equals(a.stride(), Nd4j.getStrides(a.shape(), 'c')));
        return inBuffer && cStrides ? a : a.dup('c');
    }

    /**
     * Visits the bytes of a {@link #contiguousC contiguous} array in order, window by window. The
     * windows alias the array's memory: writing into them writes the array.
     */
    static void forEachWindow(INDArray contiguous, WindowVisitor visitor) throws IOException {
        long total = contiguous.isEmpty() ? 0 : contiguous.length() * contiguous.dataType().width();
        try {
            for (long done = 0; done < total; ) {
                int n = (int) Math.min(WINDOW_BYTES, total - done);
                visitor.visit(window(contiguous, done, n));
                done += n;
            }
        } finally {
            // The windows do not keep the array alive; its native memory must outlive them.
            Reference.reachabilityFence(contiguous);
        }
    }

    /**
     * A little-endian buffer over {@code length} bytes of a {@link #contiguousC contiguous} array,
     * starting {@code byteOffset} bytes after its first element, with position 0 and capacity
     * {@code length}. It aliases the array's memory and does not keep the array alive: the caller must.
     */
    static ByteBuffer window(INDArray contiguous, long byteOffset, int length) {
        if (length < 0 || byteOffset < 0) {
            throw new IllegalArgumentException("window of " + length + " bytes at byte " + byteOffset);
        }
        if (length == 0) {
            return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN);   // JavaCPP reads limit 0 as "no limit"
        }
        long start = NativeBuffer.elementsToFirst(contiguous) * contiguous.dataType().width() + byteOffset;
        // A pointer whose address is the window's first byte. JavaCPP's asByteBuffer() does not start
        // the buffer at the pointer's position: it maps [address, address + limit) and sets the
        // buffer's position to the pointer's position. A window made by position(start) had capacity
        // start + length, so a caller stepping by capacity() (or limit()) drifted past the tensor
        // after the second 64 MB window, and past 2 GB the int capacity overflowed.
        BytePointer p = new BytePointer(contiguous.data().addressPointer()).getPointer(start);
        p.limit(length);
        ByteBuffer window = p.asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        if (window.position() != 0 || window.capacity() != length) {
            throw new IllegalStateException("JavaCPP gave a window at position " + window.position() + " with capacity "
                    + window.capacity() + " for " + length + " bytes");
        }
        return window;
    }

    /**
     * The index (in C order) of the first NaN or infinite element of a FLOAT or DOUBLE array, or -1
     * when all are finite. Other types have no non-finite values and give -1.
     */
    static long firstNonFinite(INDArray a) throws IOException {
        if (a.isEmpty() || (a.dataType() != DataType.FLOAT && a.dataType() != DataType.DOUBLE)) {
            return -1;
        }
        boolean isDouble = a.dataType() == DataType.DOUBLE;
        long[] index = {0};
        long[] found = {-1};
        forEachWindow(contiguousC(a), window -> {
            while (found[0] < 0 && window.hasRemaining()) {
                double v = isDouble ? window.getDouble() : window.getFloat();
                if (!Double.isFinite(v)) {
                    found[0] = index[0];
                }
                index[0]++;
            }
        });
        return found[0];
    }

    /** A C-order element index as a position in the shape, e.g. {@code [2, 5]}. */
    static String position(long index, long[] shape) {
        long[] at = new long[shape.length];
        long rest = index;
        for (int d = shape.length - 1; d >= 0; d--) {
            at[d] = shape[d] == 0 ? 0 : rest % shape[d];
            rest = shape[d] == 0 ? 0 : rest / shape[d];
        }
        return Arrays.toString(at);
    }
}

package org.lora4j.core;

import org.bytedeco.javacpp.BytePointer;
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
        boolean inBuffer = a.data().length() >= NativeCopy.elementsToFirst(a) + a.length();
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
     * starting {@code byteOffset} bytes after its first element. It aliases the array's memory and
     * does not keep the array alive: the caller must.
     */
    static ByteBuffer window(INDArray contiguous, long byteOffset, int length) {
        long start = NativeCopy.elementsToFirst(contiguous) * contiguous.dataType().width() + byteOffset;
        BytePointer p = new BytePointer(contiguous.data().addressPointer());
        p.position(start).limit(start + length);
        return p.asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }
}

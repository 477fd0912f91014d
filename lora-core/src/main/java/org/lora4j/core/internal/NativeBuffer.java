package org.lora4j.core.internal;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;

/**
 * The native memory of an ND4J array (FLOAT or DOUBLE), looked up once and seen from Java: reads
 * and writes of double[] and float[] ranges, single elements, adding into, filling, copies between
 * buffers, and a typed pointer at any element for BLAS ({@link Blas}).
 *
 * <p>Positions are elements counted from the array's first element (see {@link #elementsToFirst})
 * to the end of its buffer, whatever the array's shape and strides: callers that address a view's
 * elements by position must know its layout. Every access is bounds-checked against the buffer,
 * and the error names the sizes.
 *
 * <p>Why not ND4J ops: each op costs 10-20 us of dispatch and leaves OpenMP threads spinning that
 * slow the next gemm (docs/performance.md); the model's element-wise parts run as Java loops over
 * copies, and LoraLinear copies blocks between gemm calls. Each {@code data().addressPointer()} is
 * a JNI call, so a buffer is looked up once and reused. Reads, writes and copies allocate nothing;
 * {@link #pointer} allocates one small Java object.
 *
 * <p>Holds the array, so its memory lives as long as this object. Safe for concurrent use on
 * disjoint ranges (the NIO accesses are absolute).
 */
public final class NativeBuffer {
    /**
     * Per-thread staging for FLOAT buffers read or written as double[]: a bulk NIO copy plus a
     * widening loop over a float[] ran about twice as fast here as element-wise FloatBuffer get/put.
     */
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[4096]);

    private final INDArray array;   // keeps the memory alive
    private final DataType type;
    private final long length;      // elements from the array's first element to the end of its buffer
    private final Pointer first;    // FloatPointer or DoublePointer whose address is the first element, position 0
    private final FloatBuffer f;    // index 0 = the first element; null unless FLOAT
    private final DoubleBuffer d;   // null unless DOUBLE

    private NativeBuffer(INDArray a) {
        this.array = a;
        this.type = checkType(a);
        long skip = elementsToFirst(a);
        this.length = a.data().length() - skip;
        this.first = firstElement(a, skip);
        // NIO indexes are ints: a buffer past 2^31 elements is mapped up to there (never met so far;
        // BLAS pointers reach the whole buffer).
        int mapped = (int) Math.min(length, Integer.MAX_VALUE - 8);
        if (mapped == 0) {
            // JavaCPP reads a limit of 0 as "no limit"
            f = type == DataType.FLOAT ? FloatBuffer.allocate(0) : null;
            d = type == DataType.DOUBLE ? DoubleBuffer.allocate(0) : null;
        } else if (type == DataType.FLOAT) {
            f = new FloatPointer(first).limit(mapped).asBuffer();
            d = null;
        } else {
            d = new DoublePointer(first).limit(mapped).asBuffer();
            f = null;
        }
    }

    /** The memory of {@code a} from its first element; {@code a} must be FLOAT or DOUBLE. */
    public static NativeBuffer of(INDArray a) {
        return new NativeBuffer(a);
    }

    /**
     * How many elements past {@code a.data().addressPointer()} the array's first element lies: the one
     * place lora4j decides where an array starts in memory.
     *
     * <p>The rule: the address is {@code data().addressPointer()} plus {@code offset() - data().offset()}
     * elements. In ND4J 1.0.0-M2.1 an array with an offset (a view made by {@code get(interval(..))},
     * an array created over a buffer at an offset, an array over a buffer view) gets a data buffer
     * that is itself a view: its {@code addressPointer()} already points at the array's first
     * element, {@code data().offset() == offset()}, and {@code data().length()} counts from there.
     * So the rule adds nothing for those arrays, and adding {@code offset()} to the address, as
     * lora4j once did, counts the offset twice and writes past the buffer; the subtraction keeps an
     * array whose buffer is not such a view right too. {@code data().asNio()}, by contrast, spans the
     * whole original buffer and is indexed by {@code offset()}: a second convention that lora4j no
     * longer uses (every NIO view here is made from the address). NativeBufferTest checks the rule
     * on each kind of array.
     */
    public static long elementsToFirst(INDArray a) {
        return a.offset() - a.data().offset();
    }

    /**
     * A FloatPointer or DoublePointer (by the array's type) whose address is the array's first element
     * and whose position is 0: what BLAS takes as a matrix's start.
     */
    static Pointer firstElement(INDArray a) {
        checkType(a);
        return firstElement(a, elementsToFirst(a));
    }

    private static Pointer firstElement(INDArray a, long skip) {
        Pointer p = a.data().addressPointer();
        Pointer typed = a.dataType() == DataType.FLOAT ? new FloatPointer(p) : new DoublePointer(p);
        // addressPointer() may carry a position of its own (in elements); fold it into the address.
        // JavaCPP's getPointer(i) moves the address by i elements and keeps the position, hence position 0.
        long at = typed.position() + skip;
        typed.position(0);
        return typed instanceof FloatPointer fp ? fp.getPointer(at) : ((DoublePointer) typed).getPointer(at);
    }

    private static DataType checkType(INDArray a) {
        DataType t = a.dataType();
        if (t != DataType.FLOAT && t != DataType.DOUBLE) {
            throw new IllegalArgumentException("native buffer must be FLOAT or DOUBLE, got " + t);
        }
        return t;
    }

    /** Whether the array's elements occupy one contiguous block in column-major ('f') order. */
    public static boolean isContiguousF(INDArray a) {
        if (a.rank() != 2) {
            return false;
        }
        long rows = a.size(0);
        long cols = a.size(1);
        return (a.stride(0) == 1 || rows == 1) && (a.stride(1) == rows || cols == 1);
    }

    public DataType type() {
        return type;
    }

    public boolean isDouble() {
        return type == DataType.DOUBLE;
    }

    /** Elements from the array's first element to the end of its buffer. */
    public long length() {
        return length;
    }

    /** The array this buffer belongs to. */
    public INDArray array() {
        return array;
    }

    /**
     * A FloatPointer or DoublePointer (by {@link #type}) at element {@code at}, for BLAS: its address
     * is that element and its position 0 (callers must not move it; at 0 it is shared). Allocates a
     * small Java object unless {@code at} is 0; the pointer does not keep the memory alive, this
     * buffer does.
     */
    public Pointer pointer(long at) {
        if (at < 0 || at > length) {
            throw new IndexOutOfBoundsException("pointer at element " + at + " of a buffer of " + length + " elements");
        }
        return at == 0 ? first : type == DataType.FLOAT ? ((FloatPointer) first).getPointer(at)
                : ((DoublePointer) first).getPointer(at);
    }

    private void checkRange(long from, long count, String what) {
        if (from < 0 || count < 0 || from > length - count) {
            throw new IndexOutOfBoundsException(what + " of " + count + " elements at element " + from
                    + " overruns a buffer of " + length + " " + type + " elements");
        }
    }

    private static void checkArray(int arrayLength, int off, int count, String what) {
        if (off < 0 || count < 0 || off > arrayLength - count) {
            throw new IndexOutOfBoundsException(what + " of " + count + " elements at index " + off
                    + " overruns a Java array of " + arrayLength);
        }
    }

    /** Element {@code i}, widened to double. */
    public double get(long i) {
        checkRange(i, 1, "get");
        return f != null ? f.get((int) i) : d.get((int) i);
    }

    /** Element {@code i} = v (rounded to float for FLOAT buffers). */
    public void put(long i, double v) {
        checkRange(i, 1, "put");
        if (f != null) {
            f.put((int) i, (float) v);
        } else {
            d.put((int) i, v);
        }
    }

    /** dst[dstOff, dstOff + count) = elements [from, from + count). */
    public void read(long from, double[] dst, int dstOff, int count) {
        checkRange(from, count, "read");
        checkArray(dst.length, dstOff, count, "read");
        int at = (int) from;
        if (f != null) {
            float[] tmp = FLOATS.get();
            for (int done = 0; done < count; done += tmp.length) {
                int m = Math.min(tmp.length, count - done);
                f.get(at + done, tmp, 0, m);    // a bulk copy, then a plain widening loop
                int o = dstOff + done;
                for (int i = 0; i < m; i++) {
                    dst[o + i] = tmp[i];
                }
            }
        } else {
            d.get(at, dst, dstOff, count);
        }
    }

    /** dst[dstOff, dstOff + count) = elements [from, from + count), narrowed to float for DOUBLE buffers. */
    public void read(long from, float[] dst, int dstOff, int count) {
        checkRange(from, count, "read");
        checkArray(dst.length, dstOff, count, "read");
        int at = (int) from;
        if (f != null) {
            f.get(at, dst, dstOff, count);
        } else {
            for (int i = 0; i < count; i++) {
                dst[dstOff + i] = (float) d.get(at + i);
            }
        }
    }

    /** Elements [from, from + count) = src[srcOff, srcOff + count), rounded to float for FLOAT buffers. */
    public void write(double[] src, int srcOff, long from, int count) {
        checkRange(from, count, "write");
        checkArray(src.length, srcOff, count, "write");
        int at = (int) from;
        if (f != null) {
            float[] tmp = FLOATS.get();
            for (int done = 0; done < count; done += tmp.length) {
                int m = Math.min(tmp.length, count - done);
                int o = srcOff + done;
                for (int i = 0; i < m; i++) {
                    tmp[i] = (float) src[o + i];
                }
                f.put(at + done, tmp, 0, m);
            }
        } else {
            d.put(at, src, srcOff, count);
        }
    }

    /** Elements [from, from + count) = src[srcOff, srcOff + count). */
    public void write(float[] src, int srcOff, long from, int count) {
        checkRange(from, count, "write");
        checkArray(src.length, srcOff, count, "write");
        int at = (int) from;
        if (f != null) {
            f.put(at, src, srcOff, count);
        } else {
            for (int i = 0; i < count; i++) {
                d.put(at + i, src[srcOff + i]);
            }
        }
    }

    /** Elements [from, from + count) += src[srcOff, srcOff + count) (the sum rounded to float for FLOAT buffers). */
    public void add(double[] src, int srcOff, long from, int count) {
        checkRange(from, count, "add");
        checkArray(src.length, srcOff, count, "add");
        int at = (int) from;
        if (f != null) {
            for (int i = 0; i < count; i++) {
                f.put(at + i, (float) (f.get(at + i) + src[srcOff + i]));
            }
        } else {
            for (int i = 0; i < count; i++) {
                d.put(at + i, d.get(at + i) + src[srcOff + i]);
            }
        }
    }

    /** Elements [from, from + count) = v. */
    public void fill(long from, long count, double v) {
        checkRange(from, count, "fill");
        int at = (int) from;
        if (f != null) {
            float x = (float) v;
            for (int i = 0; i < count; i++) {
                f.put(at + i, x);
            }
        } else {
            for (int i = 0; i < count; i++) {
                d.put(at + i, v);
            }
        }
    }

    /** Elements [from, from + count) = 0. */
    public void zero(long from, long count) {
        fill(from, count, 0.0);
    }

    /**
     * Copies elements [from, from + count) of this buffer to {@code dst} from element {@code dstFrom};
     * the buffers must have the same type. A bulk copy between the native buffers that allocates
     * nothing and, unlike ND4J's {@code assign}, wakes no thread pool.
     */
    public void copyTo(long from, NativeBuffer dst, long dstFrom, long count) {
        if (dst.type != type) {
            throw new IllegalArgumentException("copy of " + count + " elements from " + type + " to " + dst.type);
        }
        checkRange(from, count, "copy");
        dst.checkRange(dstFrom, count, "copy");
        int n = (int) count;
        if (f != null) {
            dst.f.put((int) dstFrom, f, (int) from, n);
        } else {
            dst.d.put((int) dstFrom, d, (int) from, n);
        }
    }

    // Whole-array shorthands, shaped as the calls of the model code they serve.

    /** dst[0, count) = a's elements [0, count) from its first element. */
    public static void read(INDArray a, double[] dst, int count) {
        of(a).read(0, dst, 0, count);
    }

    /** a's elements [0, count) from its first element = src[0, count). */
    public static void write(double[] src, INDArray a, int count) {
        of(a).write(src, 0, 0, count);
    }

    /** a's elements [0, count) from its first element += src[0, count). */
    public static void add(double[] src, INDArray a, int count) {
        of(a).add(src, 0, 0, count);
    }

    /** Copies {@code count} elements from src (element {@code srcFrom}) to dst (element {@code dstFrom}); same type. */
    public static void copy(INDArray src, long srcFrom, INDArray dst, long dstFrom, long count) {
        of(src).copyTo(srcFrom, of(dst), dstFrom, count);
    }

    @Override
    public String toString() {
        return "NativeBuffer[" + type + ", " + length + " elements]";
    }
}

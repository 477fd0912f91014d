package org.lora4j.core;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Big tensors with a deterministic, never-repeating content, for the real-size safetensors tests.
 *
 * <p>The content is the one src/test/resources/safetensors/big_safetensors.py writes and checks
 * (its docstring is the definition): element i of a tensor with seed s comes from a 64-bit hash of
 * i and s, and every float value is an integer its type holds exactly, so equal means bit-equal.
 * The hash does not repeat with the 64 MB windows or 1 GiB mappings a reader walks in, so a byte
 * read from the wrong place shows at that element.
 */
final class BigTensors {
    private BigTensors() {
    }

    /** One tensor of a test file: its key, safetensors dtype, shape and content seed. */
    record Spec(String name, String dtype, long[] shape, long seed) {
        long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        long bytes() {
            return elements() * SafetensorsDtype.parse(dtype).size;
        }

        /** The ND4J type the tensor is generated in (F16 and BF16 as themselves). */
        DataType nd4j() {
            return SafetensorsDtype.parse(dtype).nd4j;
        }

        String json() {
            return "{\"name\":\"" + name + "\",\"dtype\":\"" + dtype + "\",\"shape\":" + Arrays.toString(shape)
                    + ",\"seed\":" + seed + "}";
        }
    }

    /**
     * Every dtype lora4j reads and writes, each past a 64 MB window; 2,228,538,624 bytes in all
     * (over 2 GiB), in the order lora4j's writer lays them out, so that in either writer's file
     * {@code embed} (Qwen2.5-0.5B's embedding shape) straddles 1 GiB and {@code u8} straddles 2 GiB.
     */
    static List<Spec> overTwoGibibytes() {
        List<Spec> spec = new ArrayList<>();
        spec.add(new Spec("i64", "I64", new long[]{10_000_000}, 1));
        spec.add(new Spec("f64", "F64", new long[]{9_000, 10_000}, 2));
        spec.add(new Spec("embed", "F32", new long[]{151_936, 896}, 3));
        spec.add(new Spec("w240", "F32", new long[]{60_000, 1_000}, 4));
        spec.add(new Spec("i32", "I32", new long[]{20_000_000}, 5));
        spec.add(new Spec("bf16", "BF16", new long[]{70_000, 1_000}, 6));
        spec.add(new Spec("f16", "F16", new long[]{70_000, 1_000}, 7));
        spec.add(new Spec("i16", "I16", new long[]{40_000_000}, 8));
        spec.add(new Spec("i8", "I8", new long[]{68_000_000}, 9));
        spec.add(new Spec("u8", "U8", new long[]{68_000_000}, 10));
        spec.add(new Spec("bool", "BOOL", new long[]{68_000_000}, 11));
        return spec;
    }

    static String json(List<Spec> spec) {
        StringBuilder s = new StringBuilder("[");
        for (Spec t : spec) {
            s.append(s.length() > 1 ? ",\n" : "").append(t.json());
        }
        return s.append("]").toString();
    }

    private static final List<String> DTYPES = List.of("F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL");

    static long hash(long i, long seed) {
        long x = (i + 1) * 0x9E3779B97F4A7C15L + seed * 0xBF58476D1CE4E5B9L;
        return x ^ (x >>> 31);
    }

    /** The dtype as a small int, so the per-element switches are table switches, not string compares. */
    private static int code(String dtype) {
        int code = DTYPES.indexOf(dtype);
        if (code < 0) {
            throw new IllegalArgumentException(dtype);
        }
        return code;
    }

    /** Element i's value, as a long (every value is an integer). */
    static long value(int code, long h) {
        return switch (code) {
            case 0 -> (h >>> 11) - (1L << 52);  // F64
            case 1 -> (h >>> 40) - (1L << 23);  // F32
            case 2 -> (h >>> 53) - 1024;        // F16
            case 3 -> (h >>> 56) - 128;         // BF16
            case 4 -> h;                        // I64
            case 5 -> (int) (h >>> 32);         // I32
            case 6 -> (short) (h >>> 48);       // I16
            case 7 -> (byte) (h >>> 56);        // I8
            case 8 -> (h >>> 56) & 0xFF;        // U8
            default -> h >>> 63;                // BOOL
        };
    }

    /**
     * A new tensor of the spec's dtype and shape holding its pattern.
     *
     * @param checksum receives the tensor's checksum at index 0
     */
    static INDArray generate(Spec t, long[] checksum) throws IOException {
        INDArray out = Nd4j.createUninitialized(t.nd4j(), t.shape(), 'c');
        int code = code(t.dtype());
        long seed = t.seed();
        long[] index = {0};
        long[] sum = {0};
        TensorBytes.forEachWindow(out, window -> {
            long i = index[0];
            long s = sum[0];
            long weight = i % 65537 + 1;   // i % 65537 + 1, kept incrementally: a division per element is slow
            while (window.hasRemaining()) {
                long v = value(code, hash(i, seed));
                switch (code) {
                    case 0 -> window.putDouble(v);
                    case 1 -> window.putFloat(v);
                    case 2 -> window.putShort(HalfFloats.floatToHalf(v));
                    case 3 -> window.putShort((short) (Float.floatToIntBits(v) >>> 16));
                    case 4 -> window.putLong(v);
                    case 5 -> window.putInt((int) v);
                    case 6 -> window.putShort((short) v);
                    default -> window.put((byte) v);   // I8, U8, BOOL
                }
                s += v * weight;
                i++;
                weight = weight == 65537 ? 1 : weight + 1;
            }
            index[0] = i;
            sum[0] = s;
        });
        checksum[0] = sum[0];
        return out;
    }

    /**
     * Checks every element of a tensor read back against the pattern and returns its checksum
     * (big_safetensors.py's): F16/BF16 may come widened to FLOAT or as stored bits.
     *
     * @throws AssertionError naming the key, the element and both values at the first difference
     */
    static long verify(Spec t, INDArray read) throws IOException {
        if (!Arrays.equals(t.shape(), read.shape())) {
            throw new AssertionError(t.name() + ": shape " + Arrays.toString(read.shape()) + ", expected "
                    + Arrays.toString(t.shape()));
        }
        boolean widened = read.dataType() == DataType.FLOAT && !t.dtype().equals("F32");
        if (read.dataType() != t.nd4j() && !widened) {
            throw new AssertionError(t.name() + ": read as " + read.dataType() + ", expected " + t.nd4j());
        }
        int code = code(t.dtype());
        long seed = t.seed();
        long[] index = {0};
        long[] checksum = {0};
        TensorBytes.forEachWindow(TensorBytes.contiguousC(read), window -> {
            long i = index[0];
            long s = checksum[0];
            long weight = i % 65537 + 1;
            while (window.hasRemaining()) {
                long expected = value(code, hash(i, seed));
                long got = widened ? readFloat(window, t.name(), i) : read(code, window, t.name(), i);
                if (got != expected) {
                    throw new AssertionError(t.name() + ": element " + i + " of " + t.elements() + " is " + got
                            + ", expected " + expected);
                }
                s += expected * weight;
                i++;
                weight = weight == 65537 ? 1 : weight + 1;
            }
            index[0] = i;
            checksum[0] = s;
        });
        if (index[0] != t.elements()) {
            throw new AssertionError(t.name() + ": " + index[0] + " elements, expected " + t.elements());
        }
        return checksum[0];
    }

    private static long readFloat(ByteBuffer window, String name, long i) {
        float f = window.getFloat();
        if (f != Math.rint(f)) {
            throw new AssertionError(name + ": element " + i + " is " + f + ", not an integer");
        }
        return (long) f;
    }

    private static long read(int code, ByteBuffer window, String name, long i) {
        return switch (code) {
            case 0 -> {
                double d = window.getDouble();
                if (d != Math.rint(d)) {
                    throw new AssertionError(name + ": element " + i + " is " + d + ", not an integer");
                }
                yield (long) d;
            }
            case 1 -> readFloat(window, name, i);
            case 2 -> (long) HalfFloats.halfToFloat(window.getShort());
            case 3 -> (long) Float.intBitsToFloat(window.getShort() << 16);
            case 4 -> window.getLong();
            case 5 -> window.getInt();
            case 6 -> window.getShort();
            case 7 -> window.get();
            default -> window.get() & 0xFF;   // U8, BOOL
        };
    }
}

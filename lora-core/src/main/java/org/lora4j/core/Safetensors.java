package org.lora4j.core;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.IntConsumer;

/**
 * Writes safetensors files (read them with {@link SafetensorsFile}).
 *
 * <p>The layout is the reference implementation's, byte for byte: {@code __metadata__} first, then
 * tensors ordered by element size (largest first, so each stays aligned) and name, compact JSON
 * padded with spaces to a multiple of 8 bytes, data little-endian in C order. ND4J types map to
 * FLOAT F32, DOUBLE F64, HALF F16, BFLOAT16 BF16, LONG I64, INT I32, SHORT I16, BYTE I8, UBYTE U8,
 * BOOL BOOL.
 *
 * <p>A file is written through {@link AtomicFiles}: a save that fails (full disk, exception, crash)
 * leaves the previous file as it was, and readers never see half a file.
 */
public final class Safetensors {
    private static final Logger LOG = LoggerFactory.getLogger(Safetensors.class);
    private static final JsonFactory JSON = new JsonFactory();
    private static final IntConsumer NO_HOOK = i -> { };
    /** Elements converted per step when narrowing to F16/BF16, bounding the scratch buffer. */
    private static final int CONVERT_BLOCK = 1 << 16;

    private Safetensors() {
    }

    private record Planned(String key, INDArray tensor, SafetensorsDtype dtype, long bytes) {
    }

    /**
     * Writes the tensors, each in the safetensors dtype of its ND4J type.
     *
     * @param tensors  name to tensor; names must be non-empty and not {@code __metadata__}
     * @param metadata the header's {@code __metadata__} strings, e.g. {@code {"format": "pt"}}; null or
     *                 empty for none
     * @throws IllegalArgumentException before anything is written, for a bad name, a null tensor or a
     *                                  type safetensors cannot hold here (UTF8, UINT16 ...)
     */
    public static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata) throws IOException {
        write(file, tensors, metadata, null, NO_HOOK);
    }

    /**
     * Writes the tensors with every floating-point tensor stored as {@code floatType} (FLOAT, DOUBLE,
     * HALF or BFLOAT16); integer and BOOL tensors keep their type. Narrowing to HALF or BFLOAT16
     * rounds to nearest even, as {@code torch.Tensor.half()} and {@code .bfloat16()} do; a DOUBLE
     * tensor is first rounded to float32.
     */
    public static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata,
                             DataType floatType) throws IOException {
        if (floatType != DataType.FLOAT && floatType != DataType.DOUBLE && floatType != DataType.HALF
                && floatType != DataType.BFLOAT16) {
            throw new IllegalArgumentException(file + ": floatType must be FLOAT, DOUBLE, HALF or BFLOAT16, got " + floatType);
        }
        write(file, tensors, metadata, floatType, NO_HOOK);
    }

    /** The write, with a hook run after each tensor's bytes so tests can make a save fail midway. */
    static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata,
                      DataType floatType, IntConsumer afterTensor) throws IOException {
        AtomicFiles.commit(writeTemp(file, tensors, metadata, floatType, afterTensor), file);
    }

    /**
     * Writes the complete file to a new temporary sibling of {@code file}, forced to disk, and returns
     * its path; {@link AtomicFiles#commit} then puts it in place. On failure the temporary file is deleted.
     */
    static Path writeTemp(Path file, Map<String, INDArray> tensors, Map<String, String> metadata,
                          DataType floatType, IntConsumer afterTensor) throws IOException {
        TensorBytes.checkLittleEndian();
        List<Planned> plan = plan(file, tensors, floatType);
        byte[] header = header(file, plan, metadata);
        Path temp = AtomicFiles.writeTemp(file, channel -> {
            ByteBuffer head = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(header.length).put(header).flip();
            AtomicFiles.writeFully(channel, head);
            for (int i = 0; i < plan.size(); i++) {
                writeTensor(channel, plan.get(i));
                afterTensor.accept(i);
            }
        });
        LOG.debug("wrote {} tensors, header {} bytes, to {}", plan.size(), header.length, temp);
        return temp;
    }

    // ---------------------------------------------------------------------------------------------

    private static List<Planned> plan(Path file, Map<String, INDArray> tensors, DataType floatType) {
        List<Planned> plan = new ArrayList<>(tensors.size());
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            String key = e.getKey();
            INDArray t = e.getValue();
            if (key == null || key.isEmpty()) {
                throw new IllegalArgumentException(file + ": tensor names must be non-empty, got " + (key == null ? "null" : "''"));
            }
            if ("__metadata__".equals(key)) {
                throw new IllegalArgumentException(file + ": '__metadata__' is the header's metadata key and cannot name a tensor");
            }
            if (t == null) {
                throw new IllegalArgumentException(file + ": tensor '" + key + "' is null");
            }
            SafetensorsDtype dtype = SafetensorsDtype.of(t.dataType());
            if (dtype == null) {
                throw new IllegalArgumentException(file + ": tensor '" + key + "' has ND4J type " + t.dataType()
                        + "; supported: FLOAT, DOUBLE, HALF, BFLOAT16, LONG, INT, SHORT, BYTE, UBYTE, BOOL");
            }
            if (floatType != null && dtype.isFloatingPoint()) {
                dtype = SafetensorsDtype.of(floatType);
            }
            long elements = t.isEmpty() ? 0 : t.length();
            plan.add(new Planned(key, t, dtype, elements * dtype.size));
        }
        // The reference writer's order: descending dtype (alignment), then name by UTF-8 bytes.
        plan.sort(Comparator.comparing(Planned::dtype, Comparator.reverseOrder())
                .thenComparing((x, y) -> Arrays.compareUnsigned(
                        x.key.getBytes(StandardCharsets.UTF_8), y.key.getBytes(StandardCharsets.UTF_8))));
        return plan;
    }

    private static byte[] header(Path file, List<Planned> plan, Map<String, String> metadata) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (JsonGenerator g = JSON.createGenerator(bytes)) {
            g.writeStartObject();
            if (metadata != null && !metadata.isEmpty()) {
                g.writeObjectFieldStart("__metadata__");
                for (Map.Entry<String, String> m : new TreeMap<>(checkedMetadata(file, metadata)).entrySet()) {
                    g.writeStringField(m.getKey(), m.getValue());
                }
                g.writeEndObject();
            }
            long offset = 0;
            for (Planned p : plan) {
                g.writeObjectFieldStart(p.key);
                g.writeStringField("dtype", p.dtype.name());
                g.writeArrayFieldStart("shape");
                for (long d : p.tensor.shape()) {
                    g.writeNumber(d);
                }
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                g.writeNumber(offset + p.bytes);
                g.writeEndArray();
                g.writeEndObject();
                offset += p.bytes;
            }
            g.writeEndObject();
        }
        int padding = (8 - bytes.size() % 8) % 8;   // so the data buffer starts 8-byte aligned
        for (int i = 0; i < padding; i++) {
            bytes.write(' ');
        }
        return bytes.toByteArray();
    }

    private static Map<String, String> checkedMetadata(Path file, Map<String, String> metadata) {
        for (Map.Entry<String, String> m : metadata.entrySet()) {
            if (m.getKey() == null || m.getValue() == null) {
                throw new IllegalArgumentException(file + ": metadata keys and values must be non-null, got "
                        + m.getKey() + " = " + m.getValue());
            }
        }
        return metadata;
    }

    private static void writeTensor(FileChannel channel, Planned p) throws IOException {
        INDArray t = p.tensor;
        if (p.dtype.nd4j == t.dataType()) {
            TensorBytes.forEachWindow(TensorBytes.contiguousC(t), window -> AtomicFiles.writeFully(channel, window));
        } else if (p.dtype == SafetensorsDtype.F16 || p.dtype == SafetensorsDtype.BF16) {
            INDArray floats = TensorBytes.contiguousC(t.dataType() == DataType.FLOAT ? t : t.castTo(DataType.FLOAT));
            boolean half = p.dtype == SafetensorsDtype.F16;
            ByteBuffer scratch = ByteBuffer.allocateDirect(CONVERT_BLOCK * 2).order(ByteOrder.LITTLE_ENDIAN);
            TensorBytes.forEachWindow(floats, window -> {
                while (window.hasRemaining()) {
                    int n = Math.min(CONVERT_BLOCK, window.remaining() / 4);
                    scratch.clear();
                    for (int i = 0; i < n; i++) {
                        float f = window.getFloat();
                        scratch.putShort(half ? HalfFloats.floatToHalf(f) : HalfFloats.floatToBfloat16(f));
                    }
                    scratch.flip();
                    AtomicFiles.writeFully(channel, scratch);
                }
            });
        } else {
            INDArray cast = t.castTo(p.dtype.nd4j);   // widening, or DOUBLE to FLOAT
            TensorBytes.forEachWindow(TensorBytes.contiguousC(cast), window -> AtomicFiles.writeFully(channel, window));
        }
    }

    /**
     * A HALF or BFLOAT16 copy of a FLOAT array, rounded to nearest even by lora4j's conversion
     * (ND4J's cast is not documented to round that way).
     */
    static INDArray narrow(INDArray floats, SafetensorsDtype target) throws IOException {
        INDArray src = TensorBytes.contiguousC(floats);
        INDArray out = Nd4j.createUninitialized(target.nd4j, src.shape(), 'c');
        boolean half = target == SafetensorsDtype.F16;
        long[] element = {0};
        TensorBytes.forEachWindow(src, window -> {
            int n = window.remaining() / 4;
            ByteBuffer dst = TensorBytes.window(out, element[0] * 2, n * 2);
            for (int i = 0; i < n; i++) {
                float f = window.getFloat();
                dst.putShort(half ? HalfFloats.floatToHalf(f) : HalfFloats.floatToBfloat16(f));
            }
            element[0] += n;
        });
        return out;
    }
}

package org.lora4j.core;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * A safetensors file opened for reading: the header parsed and checked, the tensor bytes
 * memory-mapped, and each tensor copied into an ND4J array only when asked for.
 *
 * <p>Format (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of UTF-8
 * JSON mapping each tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} plus an
 * optional {@code "__metadata__"} string map, then the data buffer, which the offsets (relative to
 * its start) must cover exactly: no overlaps, no gaps, nothing after the last tensor. Tensors are
 * little-endian, C order. {@link #open} checks all of this, so a damaged or hand-edited file fails
 * there, with a {@link FileFormatException} naming the file and the key or value at fault, and not
 * later inside a training run.
 *
 * <p>The data buffer is mapped, not read: a multi-GB checkpoint costs address space, not heap, and
 * {@link #get} copies just one tensor into ND4J's off-heap memory. {@link #get} may be called from
 * several threads; {@link #close} must not race with it.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The reference implementation refuses larger headers; so does this reader, before allocating. */
    static final long MAX_HEADER_BYTES = 100_000_000L;
    /** Bytes per mapping: a MappedByteBuffer is int-indexed, so a file over 2 GB takes several. */
    static final long DEFAULT_CHUNK_BYTES = 1L << 30;
    /** Elements converted per step when widening F16/BF16, bounding the heap scratch buffer. */
    private static final int CONVERT_BLOCK = 1 << 16;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)  // a repeated key would shadow a tensor
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private record Entry(SafetensorsDtype dtype, long[] shape, long begin, long end) {
        long bytes() {
            return end - begin;
        }
    }

    private final Path file;
    private final FileChannel channel;
    private final long chunkBytes;
    private final MappedByteBuffer[] chunks;   // the data buffer, chunkBytes per mapping
    private final Map<String, Entry> entries;  // sorted by name
    private final Map<String, String> metadata;
    private volatile boolean closed;

    private SafetensorsFile(Path file, FileChannel channel, long chunkBytes) throws IOException {
        this.file = file;
        this.channel = channel;
        this.chunkBytes = chunkBytes;
        long size = channel.size();
        if (size < 8) {
            throw bad("file is " + size + " bytes, shorter than the 8-byte header length (truncated?)");
        }
        ByteBuffer lengthField = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(lengthField, 0);
        long headerBytes = lengthField.getLong(0);   // u64: negative here means >= 2^63
        if (headerBytes < 0 || headerBytes > MAX_HEADER_BYTES) {
            // Text or another format read as a length gives an absurd number: say what the file likely is.
            throw bad("not a safetensors file? its first 8 bytes give a header length of "
                    + Long.toUnsignedString(headerBytes) + ", which exceeds the limit of " + MAX_HEADER_BYTES + " bytes");
        }
        if (headerBytes > size - 8) {
            throw bad("header length " + headerBytes + " is larger than the " + (size - 8)
                    + " bytes after the length field (truncated?)");
        }
        ByteBuffer header = ByteBuffer.allocate((int) headerBytes);
        readFully(header, 8);
        header.flip();
        String json = decodeUtf8(header);
        long dataLength = size - 8 - headerBytes;

        Map<String, Entry> parsed = new TreeMap<>();
        Map<String, String> meta = new LinkedHashMap<>();
        parseHeader(json, parsed, meta);
        checkCoverage(parsed, dataLength);
        this.entries = Collections.unmodifiableMap(parsed);
        this.metadata = Collections.unmodifiableMap(meta);

        int count = (int) ((dataLength + chunkBytes - 1) / chunkBytes);
        this.chunks = new MappedByteBuffer[count];
        for (int i = 0; i < count; i++) {
            long start = i * chunkBytes;
            chunks[i] = channel.map(FileChannel.MapMode.READ_ONLY, 8 + headerBytes + start,
                    Math.min(chunkBytes, dataLength - start));
        }
    }

    /**
     * Opens and validates a safetensors file.
     *
     * @throws FileFormatException when the file breaks the format; the message names the file and
     *                             the key or value at fault
     * @throws IOException         when the file cannot be read
     */
    public static SafetensorsFile open(Path file) throws IOException {
        return open(file, DEFAULT_CHUNK_BYTES);
    }

    /** {@link #open(Path)} with a chosen mapping size, so tests can cross chunk boundaries on small files. */
    static SafetensorsFile open(Path file, long chunkBytes) throws IOException {
        if (chunkBytes < 1 || chunkBytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("chunkBytes must be in [1, 2^31), got " + chunkBytes);
        }
        if (Files.isDirectory(file)) {
            throw new FileFormatException(file, "is a directory, not a safetensors file");
        }
        FileChannel channel;
        try {
            channel = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            // The JDK's message is the bare path; say what was looked for.
            NoSuchFileException named = new NoSuchFileException(file.toString(), null, "no such safetensors file");
            named.initCause(e);
            throw named;
        }
        try {
            return new SafetensorsFile(file, channel, chunkBytes);
        } catch (IOException | RuntimeException | Error e) {
            try {
                channel.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** The file this was opened from. */
    public Path path() {
        return file;
    }

    /** The tensor names, sorted (as {@code safe_open(...).keys()} returns them). */
    public Set<String> keys() {
        return entries.keySet();
    }

    /** The tensor's shape as stored; {@code []} for a scalar. */
    public long[] shape(String key) {
        return entry(key).shape.clone();
    }

    /** The tensor's stored element type, as the header names it: "F32", "BF16", "I64", ... */
    public String dtype(String key) {
        return entry(key).dtype.name();
    }

    /** The header's {@code __metadata__} string map; empty when the file has none. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * The tensor as a new 'c'-order array in its natural ND4J type: F32 as FLOAT, F64 as DOUBLE,
     * F16 and BF16 widened (exactly) to FLOAT because lora4j computes in float32 or wider, integer
     * and BOOL types as their ND4J counterparts.
     *
     * @throws UnsupportedOperationException for a dtype ND4J cannot hold (U16, U32, U64, F8_*, C64)
     */
    public INDArray get(String key) {
        Entry e = entry(key);
        DataType type = e.dtype == SafetensorsDtype.F16 || e.dtype == SafetensorsDtype.BF16
                ? DataType.FLOAT : e.dtype.nd4j;
        return get(key, e, type == null ? DataType.UNKNOWN : type);
    }

    /**
     * The tensor as a new 'c'-order array of the given type. F16/BF16 to FLOAT or DOUBLE is lora4j's
     * exact widening; F16/BF16 requested as stored copies the bits; FLOAT requested as HALF or
     * BFLOAT16 rounds to nearest even (F64 goes through float32 first); other conversions are ND4J's
     * {@code castTo}.
     */
    public INDArray get(String key, DataType type) {
        return get(key, entry(key), Objects.requireNonNull(type, "type"));
    }

    private INDArray get(String key, Entry e, DataType type) {
        if (e.dtype.nd4j == null) {
            throw new UnsupportedOperationException(file + ": key '" + key + "' has dtype " + e.dtype
                    + ", which ND4J cannot hold");
        }
        TensorBytes.checkLittleEndian();
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            // A loaded tensor outlives any workspace the caller may be in.
            boolean sixteen = e.dtype == SafetensorsDtype.F16 || e.dtype == SafetensorsDtype.BF16;
            if (type == e.dtype.nd4j) {
                return readRaw(e);
            }
            if (sixteen && (type == DataType.FLOAT || type == DataType.DOUBLE)) {
                INDArray floats = readWidened(e);
                return type == DataType.FLOAT ? floats : floats.castTo(DataType.DOUBLE);
            }
            if ((type == DataType.HALF || type == DataType.BFLOAT16) && e.dtype.isFloatingPoint()) {
                INDArray floats = get(key, e, DataType.FLOAT);
                return Safetensors.narrow(floats, type == DataType.HALF ? SafetensorsDtype.F16 : SafetensorsDtype.BF16);
            }
            return readRaw(e).castTo(type);
        } catch (IOException ex) {
            // The bytes are mapped and were validated at open; an error here is the disk, not the format.
            throw new UncheckedIOException(file + ": reading key '" + key + "'", ex);
        }
    }

    /** Closes the file. Arrays already returned stay valid: they are copies. */
    @Override
    public void close() throws IOException {
        closed = true;
        channel.close();
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + file + ", " + entries.size() + " tensors]";
    }

    // ---------------------------------------------------------------------------------------------
    // Reading tensor bytes

    private INDArray readRaw(Entry e) throws IOException {
        INDArray out = Nd4j.createUninitialized(e.dtype.nd4j, e.shape, 'c');
        long[] position = {e.begin};
        TensorBytes.forEachWindow(out, window -> {
            int n = window.remaining();
            copyFromFile(position[0], window);
            position[0] += n;
        });
        return out;
    }

    private INDArray readWidened(Entry e) throws IOException {
        INDArray out = Nd4j.createUninitialized(DataType.FLOAT, e.shape, 'c');
        boolean half = e.dtype == SafetensorsDtype.F16;
        ByteBuffer scratch = ByteBuffer.allocate(CONVERT_BLOCK * 2).order(ByteOrder.LITTLE_ENDIAN);
        long[] position = {e.begin};
        TensorBytes.forEachWindow(out, window -> {
            while (window.hasRemaining()) {
                int n = Math.min(CONVERT_BLOCK, window.remaining() / 4);
                scratch.clear().limit(n * 2);
                copyFromFile(position[0], scratch);
                position[0] += n * 2L;
                scratch.flip();
                for (int i = 0; i < n; i++) {
                    short bits = scratch.getShort();
                    window.putFloat(half ? HalfFloats.halfToFloat(bits) : HalfFloats.bfloat16ToFloat(bits));
                }
            }
        });
        return out;
    }

    /** Fills dst's remaining bytes from the data buffer starting at dataPosition, across mappings. */
    private void copyFromFile(long dataPosition, ByteBuffer dst) {
        long pos = dataPosition;
        while (dst.hasRemaining()) {
            long index = pos / chunkBytes;
            int within = (int) (pos % chunkBytes);
            if (pos < 0 || index >= chunks.length || within >= chunks[(int) index].limit()) {
                // Open checked every tensor against the data length, so this is a bug in the caller;
                // fail loudly rather than loop on a zero-byte copy or read another tensor's bytes.
                throw new IllegalStateException(file + ": read at data byte " + pos + " is past the "
                        + "data buffer's end");
            }
            ByteBuffer src = chunks[(int) index].duplicate();   // own position and limit: concurrent gets are safe
            int n = Math.min(src.limit() - within, dst.remaining());
            src.limit(within + n).position(within);
            dst.put(src);
            pos += n;
        }
    }

    private Entry entry(String key) {
        if (closed) {
            throw new IllegalStateException(file + " is closed");
        }
        Entry e = entries.get(key);
        if (e == null) {
            throw new IllegalArgumentException(file + ": no tensor '" + key + "' among " + entries.size()
                    + " tensors" + (entries.size() <= 10 ? " " + entries.keySet() : ""));
        }
        return e;
    }

    // ---------------------------------------------------------------------------------------------
    // Header validation

    private void parseHeader(String json, Map<String, Entry> out, Map<String, String> meta) throws FileFormatException {
        if (json.isEmpty() || json.charAt(0) != '{') {
            throw bad("header must be a JSON object starting with '{', got " + preview(json));
        }
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException ex) {
            throw bad("header is not valid JSON: " + ex.getOriginalMessage(), ex);
        }
        if (root == null || !root.isObject()) {
            throw bad("header is not a JSON object: " + preview(json));
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            if ("__metadata__".equals(field.getKey())) {
                parseMetadata(field.getValue(), meta);
            } else {
                out.put(field.getKey(), parseEntry(field.getKey(), field.getValue()));
            }
        }
    }

    private void parseMetadata(JsonNode node, Map<String, String> meta) throws FileFormatException {
        if (node.isNull()) {
            return;  // the reference implementation reads null as "no metadata"
        }
        if (!node.isObject()) {
            throw bad("__metadata__ must be an object of strings, got " + node);
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            if (!field.getValue().isTextual()) {
                throw bad("__metadata__ value of '" + field.getKey() + "' must be a string, got " + field.getValue());
            }
            meta.put(field.getKey(), field.getValue().textValue());
        }
    }

    private Entry parseEntry(String key, JsonNode node) throws FileFormatException {
        if (!node.isObject()) {
            throw bad("key '" + key + "': expected {dtype, shape, data_offsets}, got " + node);
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw bad("key '" + key + "': dtype missing or not a string: " + dtypeNode);
        }
        SafetensorsDtype dtype = SafetensorsDtype.parse(dtypeNode.textValue());
        if (dtype == null) {
            throw bad("key '" + key + "': unknown dtype '" + dtypeNode.textValue() + "'");
        }
        JsonNode shapeNode = node.get("shape");
        long[] shape = nonNegativeLongs(shapeNode, -1);
        if (shape == null) {
            throw bad("key '" + key + "': shape must be a list of non-negative integers, got " + shapeNode);
        }
        JsonNode offsetsNode = node.get("data_offsets");
        long[] offsets = nonNegativeLongs(offsetsNode, 2);
        if (offsets == null || offsets[0] > offsets[1]) {
            throw bad("key '" + key + "': data_offsets must be [begin, end] with 0 <= begin <= end, got " + offsetsNode);
        }
        long needed;
        try {
            long elements = 1;
            for (long d : shape) {
                elements = Math.multiplyExact(elements, d);
            }
            needed = Math.multiplyExact(elements, dtype.size);
        } catch (ArithmeticException overflow) {
            throw bad("key '" + key + "': shape " + shapeNode + " overflows a 64-bit byte count");
        }
        if (offsets[1] - offsets[0] != needed) {
            throw bad("key '" + key + "': data_offsets " + offsetsNode + " span " + (offsets[1] - offsets[0])
                    + " bytes but " + dtype + " " + shapeNode + " needs " + needed);
        }
        return new Entry(dtype, shape, offsets[0], offsets[1]);
    }

    /** The node as non-negative longs (exactly {@code length} of them unless length is -1), or null. */
    private static long[] nonNegativeLongs(JsonNode node, int length) {
        if (node == null || !node.isArray() || (length >= 0 && node.size() != length)) {
            return null;
        }
        long[] values = new long[node.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                return null;
            }
            values[i] = v.longValue();
        }
        return values;
    }

    /** The spec requires the data buffer to be fully indexed: tensors back to back from 0 to its end. */
    private void checkCoverage(Map<String, Entry> parsed, long dataLength) throws FileFormatException {
        List<Map.Entry<String, Entry>> byOffset = new ArrayList<>(parsed.entrySet());
        byOffset.sort(Comparator.comparingLong((Map.Entry<String, Entry> x) -> x.getValue().begin)
                .thenComparingLong(x -> x.getValue().end));
        long expected = 0;
        String previous = null;
        for (Map.Entry<String, Entry> x : byOffset) {
            Entry e = x.getValue();
            if (e.begin < expected) {
                throw bad("key '" + x.getKey() + "': data_offsets [" + e.begin + ", " + e.end + "] overlap key '"
                        + previous + "', which ends at " + expected);
            }
            if (e.begin > expected) {
                throw bad("key '" + x.getKey() + "': data_offsets [" + e.begin + ", " + e.end + "] leave a gap of "
                        + (e.begin - expected) + " bytes after " + (previous == null ? "the header" : "key '" + previous + "'"));
            }
            expected = e.end;
            previous = x.getKey();
        }
        if (expected > dataLength) {
            throw bad("key '" + previous + "' ends at data byte " + expected + " but the data buffer has only "
                    + dataLength + " bytes (truncated?)");
        }
        if (expected < dataLength) {
            throw bad("the tensors cover " + expected + " bytes of the " + dataLength + "-byte data buffer; "
                    + (dataLength - expected) + " trailing bytes are not indexed");
        }
    }

    // ---------------------------------------------------------------------------------------------

    private void readFully(ByteBuffer dst, long position) throws IOException {
        long pos = position;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, pos);
            if (n < 0) {
                throw new EOFException(file + ": unexpected end of file at byte " + pos);
            }
            pos += n;
        }
    }

    private String decodeUtf8(ByteBuffer bytes) throws FileFormatException {
        try {
            CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes);
            return chars.toString();
        } catch (CharacterCodingException ex) {
            throw bad("header is not valid UTF-8", ex);
        }
    }

    private static String preview(String json) {
        String s = json.length() > 60 ? json.substring(0, 60) + "..." : json;
        return "'" + s + "'";
    }

    private FileFormatException bad(String problem) {
        return new FileFormatException(file, problem);
    }

    private FileFormatException bad(String problem, Throwable cause) {
        return new FileFormatException(file, problem, cause);
    }
}

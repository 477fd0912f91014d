package org.lora4j.core;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsTest {
    @TempDir
    Path dir;

    // ---------------------------------------------------------------------------------------------
    // Writing: the reference implementation's bytes

    /** The expected bytes are the reference implementation's own test vector (safetensors tensor.rs). */
    @Test
    void writesTheReferenceImplementationsBytes() throws IOException {
        Path file = dir.resolve("attn.safetensors");
        Safetensors.write(file, Map.of("attn.0", Nd4j.linspace(0, 5, 6, DataType.FLOAT).reshape(1, 2, 3)), null);
        byte[] expected = bytes(64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
                116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
                58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
                101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
                0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64);
        assertArrayEquals(expected, Files.readAllBytes(file));

        Path empty = dir.resolve("empty.safetensors");
        Safetensors.write(empty, Map.of(), Map.of("framework", "pt"));
        assertArrayEquals(bytes(40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
                95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
                116, 34, 125, 125, 32, 32, 32, 32, 32), Files.readAllBytes(empty));
        try (SafetensorsFile f = SafetensorsFile.open(empty)) {
            assertTrue(f.keys().isEmpty());
            assertEquals(Map.of("framework", "pt"), f.metadata());
        }
    }

    @Test
    void laysOutLargestDtypeFirstThenByNameWithAPaddedHeader() throws IOException {
        Path file = dir.resolve("order.safetensors");
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        tensors.put("b_half", Nd4j.ones(DataType.HALF, 3));
        tensors.put("a_half", Nd4j.ones(DataType.HALF, 1));
        tensors.put("z_double", Nd4j.ones(DataType.DOUBLE, 2));
        tensors.put("m_float", Nd4j.ones(DataType.FLOAT, 1));
        Safetensors.write(file, tensors, Map.of("format", "pt"));
        byte[] raw = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(raw, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, n % 8, "header length " + n + " is padded to 8");
        String header = new String(raw, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"},\"z_double\":"), header);
        List<String> order = new ArrayList<>();
        JsonNode root = new ObjectMapper().readTree(header);
        for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
            order.add(it.next());
        }
        assertEquals(List.of("__metadata__", "z_double", "m_float", "a_half", "b_half"), order);
        assertEquals("[0,16]", root.get("z_double").get("data_offsets").toString());
        assertEquals("[16,20]", root.get("m_float").get("data_offsets").toString());
        assertEquals("[20,22]", root.get("a_half").get("data_offsets").toString());
        assertEquals("[22,28]", root.get("b_half").get("data_offsets").toString());
        assertEquals(8 + n + 28, raw.length);
    }

    // ---------------------------------------------------------------------------------------------
    // Round trips

    @Test
    void roundTripsEveryDtype() throws IOException {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        INDArray values = Nd4j.createFromArray(new double[]{-1.5, 0, 0.1, 2.75, 65504, -3e-5}).reshape(2, 3);
        for (DataType t : new DataType[]{DataType.FLOAT, DataType.DOUBLE, DataType.HALF, DataType.BFLOAT16}) {
            tensors.put("x_" + t, values.castTo(t));
        }
        tensors.put("x_LONG", Nd4j.createFromArray(new long[]{Long.MIN_VALUE, -1, 0, Long.MAX_VALUE}).reshape(2, 2));
        tensors.put("x_INT", Nd4j.createFromArray(new int[]{Integer.MIN_VALUE, -7, 7, Integer.MAX_VALUE}));
        tensors.put("x_SHORT", Nd4j.createFromArray(new short[]{Short.MIN_VALUE, -2, 3, Short.MAX_VALUE}));
        tensors.put("x_BYTE", Nd4j.createFromArray(new byte[]{Byte.MIN_VALUE, -1, 1, Byte.MAX_VALUE}));
        tensors.put("x_UBYTE", Nd4j.createFromArray(new byte[]{0, 1, (byte) 200, (byte) 255}).castTo(DataType.UBYTE));
        tensors.put("x_BOOL", Nd4j.createFromArray(new boolean[]{true, false, false, true}));
        tensors.put("scalar", Nd4j.scalar(DataType.FLOAT, 3.25f));
        tensors.put("empty", Nd4j.create(DataType.FLOAT, 0, 3));
        tensors.put("rank3", Nd4j.linspace(1, 24, 24, DataType.FLOAT).reshape(2, 3, 4));
        Path file = dir.resolve("all.safetensors");
        Safetensors.write(file, tensors, Map.of("note", "round trip"));

        Map<String, String> expectedDtypes = Map.ofEntries(Map.entry("x_FLOAT", "F32"), Map.entry("x_DOUBLE", "F64"),
                Map.entry("x_HALF", "F16"), Map.entry("x_BFLOAT16", "BF16"), Map.entry("x_LONG", "I64"),
                Map.entry("x_INT", "I32"), Map.entry("x_SHORT", "I16"), Map.entry("x_BYTE", "I8"),
                Map.entry("x_UBYTE", "U8"), Map.entry("x_BOOL", "BOOL"), Map.entry("scalar", "F32"),
                Map.entry("empty", "F32"), Map.entry("rank3", "F32"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.copyOf(new java.util.TreeSet<>(tensors.keySet())), List.copyOf(f.keys()), "keys sorted");
            assertEquals(Map.of("note", "round trip"), f.metadata());
            for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
                String key = e.getKey();
                INDArray original = e.getValue();
                assertEquals(expectedDtypes.get(key), f.dtype(key), key);
                assertArrayEquals(original.shape(), f.shape(key), key);
                INDArray stored = f.get(key, original.dataType());
                assertEquals(original.dataType(), stored.dataType(), key);
                assertEquals('c', stored.ordering(), key);
                assertSameBytes(original, stored, key);
            }
            // get(key) widens the 16-bit floats to FLOAT, exactly.
            assertEquals(DataType.FLOAT, f.get("x_HALF").dataType());
            // Exactly: assertEquals on INDArrays would allow 1e-5.
            assertSameBytes(widened(tensors.get("x_HALF"), false), f.get("x_HALF"), "x_HALF widened");
            assertSameBytes(widened(tensors.get("x_BFLOAT16"), true), f.get("x_BFLOAT16"), "x_BFLOAT16 widened");
            assertEquals(DataType.DOUBLE, f.get("x_DOUBLE").dataType());
            assertEquals(3.25f, f.get("scalar").getFloat(0));
            assertEquals(0, f.get("scalar").rank());
            assertTrue(f.get("empty").isEmpty());
        }
    }

    @Test
    void writesViewsAndColumnMajorArraysInCOrder() throws IOException {
        INDArray m = Nd4j.linspace(1, 12, 12, DataType.FLOAT).reshape(3, 4);
        Map<String, INDArray> tensors = Map.of(
                "f_order", m.dup('f'),
                "transposed", m.transpose(),
                "row_slice", m.get(NDArrayIndex.interval(1, 3), NDArrayIndex.all()),
                "column_slice", m.get(NDArrayIndex.all(), NDArrayIndex.interval(1, 3)));
        Path file = dir.resolve("views.safetensors");
        Safetensors.write(file, tensors, null);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
                assertSameBytes(e.getValue(), f.get(e.getKey()), e.getKey());
            }
            assertEquals(m.getFloat(1, 2), f.get("transposed").getFloat(2, 1));
        }
    }

    @Test
    void storesFloatsAsTheRequestedTypeAndLeavesIntegersAlone() throws IOException {
        INDArray x = Nd4j.createFromArray(new float[]{1f, 1 + 0x1p-9f, 1 + 3 * 0x1p-9f, 65520f, 1e-8f});
        Map<String, INDArray> tensors = Map.of("x", x, "ids", Nd4j.createFromArray(new long[]{1, 2}));
        Path bf = dir.resolve("bf16.safetensors");
        Safetensors.write(bf, tensors, null, DataType.BFLOAT16);
        Path half = dir.resolve("f16.safetensors");
        Safetensors.write(half, tensors, null, DataType.HALF);
        Path wide = dir.resolve("f64.safetensors");
        Safetensors.write(wide, tensors, null, DataType.DOUBLE);
        try (SafetensorsFile b = SafetensorsFile.open(bf); SafetensorsFile h = SafetensorsFile.open(half);
             SafetensorsFile d = SafetensorsFile.open(wide)) {
            assertEquals("BF16", b.dtype("x"));
            assertEquals("I64", b.dtype("ids"));
            for (int i = 0; i < x.length(); i++) {
                float v = x.getFloat(i);
                assertEquals(HalfFloats.bfloat16ToFloat(HalfFloats.floatToBfloat16(v)), b.get("x").getFloat(i));
                assertEquals(HalfFloats.halfToFloat(HalfFloats.floatToHalf(v)), h.get("x").getFloat(i));
            }
            assertEquals(1f, b.get("x").getFloat(1), "1 + 2^-9 is below bf16's half-ulp and rounds to 1");
            assertEquals(Float.POSITIVE_INFINITY, h.get("x").getFloat(3));
            assertEquals("F64", d.dtype("x"));
            assertSameBytes(x.castTo(DataType.DOUBLE), d.get("x"), "F64");   // float to double is exact
            // Reading a wider float as HALF or BFLOAT16 rounds as writing does.
            assertArrayEquals(HalfFloatsTest.shortBits(h.get("x", DataType.HALF)),
                    HalfFloatsTest.shortBits(d.get("x", DataType.HALF)));
            assertArrayEquals(HalfFloatsTest.shortBits(b.get("x", DataType.BFLOAT16)),
                    HalfFloatsTest.shortBits(d.get("x", DataType.BFLOAT16)));
        }
        assertThrows(IllegalArgumentException.class, () -> Safetensors.write(bf, tensors, null, DataType.INT));
    }

    @Test
    void refusesTensorsItCannotWriteBeforeTouchingTheFile() throws IOException {
        Path file = dir.resolve("bad.safetensors");
        IllegalArgumentException reserved = assertThrows(IllegalArgumentException.class, () ->
                Safetensors.write(file, Map.of("__metadata__", Nd4j.ones(2)), null));
        assertTrue(reserved.getMessage().contains("__metadata__") && reserved.getMessage().contains("bad.safetensors"),
                reserved.getMessage());
        IllegalArgumentException utf8 = assertThrows(IllegalArgumentException.class, () ->
                Safetensors.write(file, Map.of("names", Nd4j.create("a", "b")), null));
        assertTrue(utf8.getMessage().contains("'names'") && utf8.getMessage().contains("UTF8"), utf8.getMessage());
        Map<String, INDArray> withNull = new java.util.HashMap<>();
        withNull.put("w", null);
        assertThrows(IllegalArgumentException.class, () -> Safetensors.write(file, withNull, null));
        assertFalse(Files.exists(file));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(0, files.count(), "no temporary file left behind");
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Atomic save

    @Test
    void aFailedSaveLeavesThePreviousFileIntactAndNoTemporaryFile() throws IOException {
        Path file = dir.resolve("model.safetensors");
        Safetensors.write(file, Map.of("w", Nd4j.ones(DataType.FLOAT, 4, 4)), Map.of("version", "1"));
        byte[] before = Files.readAllBytes(file);

        Map<String, INDArray> next = Map.of("w", Nd4j.zeros(DataType.FLOAT, 4, 4), "v", Nd4j.zeros(DataType.FLOAT, 8));
        IllegalStateException failure = assertThrows(IllegalStateException.class, () ->
                Safetensors.write(file, next, Map.of("version", "2"), null, i -> {
                    throw new IllegalStateException("disk full after tensor " + i);
                }));
        assertEquals("disk full after tensor 0", failure.getMessage());
        assertArrayEquals(before, Files.readAllBytes(file));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList());
        }
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(Map.of("version", "1"), f.metadata());
        }

        // A successful save replaces the file.
        Safetensors.write(file, next, Map.of("version", "2"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(Map.of("version", "2"), f.metadata());
            assertEquals(0.0, f.get("w").sumNumber().doubleValue());
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Memory-mapped reading

    /**
     * A 64 MB tensor read through mappings of an odd size, so tensors and elements straddle mapping
     * boundaries, which a file over 2 GB exercises with the default 1 GB mappings.
     */
    @Test
    void readsALargeTensorAcrossManyMappings() throws IOException {
        int rows = 4096;
        int cols = 4096;
        INDArray big = Nd4j.linspace(DataType.FLOAT, -1, 1e-6, (long) rows * cols).reshape(rows, cols);
        INDArray small = Nd4j.linspace(1, 7, 7, DataType.HALF);
        Path file = dir.resolve("big.safetensors");
        Safetensors.write(file, Map.of("big", big, "small", small), null);
        assertTrue(Files.size(file) > 64L * 1024 * 1024);
        for (long chunk : new long[]{1_000_003, SafetensorsFile.DEFAULT_CHUNK_BYTES}) {
            try (SafetensorsFile f = SafetensorsFile.open(file, chunk)) {
                INDArray read = f.get("big");
                assertArrayEquals(new long[]{rows, cols}, read.shape());
                assertSameBytes(big, read, "chunk " + chunk);
                assertEquals(big.getFloat(rows - 1, cols - 1), read.getFloat(rows - 1, cols - 1));
                assertSameBytes(widened(small, false), f.get("small"), "F16 widened across a boundary, chunk " + chunk);
            }
        }
    }

    @Test
    void namesAMissingFileOrADirectoryGivenAsTheFile() throws IOException {
        Path missing = dir.resolve("model.safetensors");
        java.nio.file.NoSuchFileException e = assertThrows(java.nio.file.NoSuchFileException.class, () -> SafetensorsFile.open(missing));
        assertEquals(missing + ": no such safetensors file", e.getMessage());
        Path folder = Files.createDirectories(dir.resolve("folder.safetensors"));
        FileFormatException f = assertThrows(FileFormatException.class, () -> SafetensorsFile.open(folder));
        assertEquals(folder + ": is a directory, not a safetensors file", f.getMessage());
    }

    @Test
    void refusesUnknownKeysAndUseAfterClose() throws IOException {
        Path file = dir.resolve("k.safetensors");
        Safetensors.write(file, Map.of("w", Nd4j.ones(2)), null);
        SafetensorsFile f = SafetensorsFile.open(file);
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> f.get("q"));
        assertTrue(missing.getMessage().contains("'q'") && missing.getMessage().contains("k.safetensors"), missing.getMessage());
        f.close();
        assertThrows(IllegalStateException.class, () -> f.get("w"));
    }

    @Test
    void opensFilesWithTypesNd4jCannotHoldButRefusesToReadThem() throws IOException {
        Path file = raw("u32.safetensors", "{\"c\":{\"dtype\":\"U32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals("U32", f.dtype("c"));
            assertEquals(0f, f.get("w").getFloat(0));
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, () -> f.get("c"));
            assertTrue(e.getMessage().contains("'c'") && e.getMessage().contains("U32"), e.getMessage());
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Validation on open: each message names the file and the key or value at fault

    static Stream<Arguments> malformedHeaders() {
        String ok = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
        return Stream.of(
                Arguments.of("not JSON", "{\"w\": ", 0, List.of("not valid JSON")),
                Arguments.of("not an object", "[1, 2]", 0, List.of("starting with '{'", "[1, 2]")),
                Arguments.of("trailing garbage", "{} x", 0, List.of("not valid JSON")),
                Arguments.of("duplicate key", "{\"w\":" + ok + ",\"w\":" + ok + "}", 8, List.of("Duplicate", "w")),
                Arguments.of("entry not an object", "{\"w\":3}", 0, List.of("'w'", "3")),
                Arguments.of("unknown dtype", "{\"w\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                        List.of("'w'", "unknown dtype 'F17'")),
                Arguments.of("dtype not a string", "{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                        List.of("'w'", "dtype")),
                Arguments.of("negative dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}}", 8,
                        List.of("'w'", "shape", "[-1,2]")),
                Arguments.of("fractional dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
                        List.of("'w'", "shape", "[2.5]")),
                Arguments.of("shape not a list", "{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8,
                        List.of("'w'", "shape", "\"2\"")),
                Arguments.of("one offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8,
                        List.of("'w'", "data_offsets", "[8]")),
                Arguments.of("end before begin", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
                        List.of("'w'", "data_offsets", "[8,0]")),
                Arguments.of("span disagrees with shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                        List.of("'w'", "[0,8]", "span 8 bytes", "needs 12")),
                Arguments.of("shape overflows", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
                        List.of("'w'", "overflows")),
                Arguments.of("overlap", "{\"a\":" + ok + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
                        List.of("'b'", "[4, 12]", "overlap key 'a'")),
                Arguments.of("gap", "{\"a\":" + ok + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20,
                        List.of("'b'", "gap of 4 bytes", "'a'")),
                Arguments.of("not starting at 0", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
                        List.of("'a'", "gap of 4 bytes after the header")),
                Arguments.of("trailing bytes", "{\"a\":" + ok + "}", 12, List.of("cover 8 bytes", "4 trailing bytes")),
                Arguments.of("truncated data", "{\"a\":" + ok + "}", 6, List.of("'a'", "ends at data byte 8", "only 6 bytes")),
                Arguments.of("metadata value not a string", "{\"__metadata__\":{\"step\":3}}", 0,
                        List.of("__metadata__", "'step'", "3")),
                Arguments.of("metadata not an object", "{\"__metadata__\":[1]}", 0, List.of("__metadata__", "[1]")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformedHeaders")
    void refusesAMalformedHeaderNamingFileAndCulprit(String name, String header, int dataBytes, List<String> fragments)
            throws IOException {
        Path file = raw("bad-" + name.replace(' ', '-') + ".safetensors", header, dataBytes);
        FileFormatException e = assertThrows(FileFormatException.class, () -> SafetensorsFile.open(file));
        assertEquals(file, e.file());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), "'" + fragment + "' missing from: " + e.getMessage());
        }
    }

    @Test
    void refusesBrokenFramingNamingFileAndValue() throws IOException {
        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, bytes(1, 2, 3, 4, 5));
        assertMessage(tiny, "5 bytes", "shorter than the 8-byte");

        Path longHeader = dir.resolve("long-header.safetensors");
        ByteBuffer b = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putLong(1000);
        b.put("{}".getBytes(StandardCharsets.UTF_8));
        Files.write(longHeader, b.array());
        assertMessage(longHeader, "header length 1000", "larger than the 12 bytes");

        Path huge = dir.resolve("huge-header.safetensors");
        Files.write(huge, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-2).array());
        assertMessage(huge, "header length of 18446744073709551614", "exceeds the limit");
        Path json = dir.resolve("judge.json");   // a text file given where a safetensors file belongs
        Files.writeString(json, "{\n  \"case_sensitive\": false\n}\n");
        assertMessage(json, json + ": not a safetensors file?", "exceeds the limit");

        Path latin1 = dir.resolve("latin1.safetensors");
        ByteBuffer l = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(8);
        l.put(new byte[]{'{', '"', (byte) 0xE9, '"', ':', '1', '}', ' '});
        Files.write(latin1, l.array());
        assertMessage(latin1, "not valid UTF-8");
    }

    private void assertMessage(Path file, String... fragments) {
        FileFormatException e = assertThrows(FileFormatException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), "'" + fragment + "' missing from: " + e.getMessage());
        }
    }

    /** A file with this exact header text (space-padded to 8) and dataBytes zero bytes after it. */
    private Path raw(String name, String header, int dataBytes) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8;
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
        out.write(h);
        for (int i = h.length; i < padded; i++) {
            out.write(' ');
        }
        out.write(new byte[dataBytes]);
        Path file = dir.resolve(name);
        Files.write(file, out.toByteArray());
        return file;
    }

    /** Exact equality: same type, shape and bytes in C order (INDArray.equals allows an epsilon). */
    static void assertSameBytes(INDArray expected, INDArray actual, String what) throws IOException {
        assertEquals(expected.dataType(), actual.dataType(), what);
        assertArrayEquals(expected.shape(), actual.shape(), what);
        INDArray e = TensorBytes.contiguousC(expected);
        INDArray a = TensorBytes.contiguousC(actual);
        long[] offset = {0};
        TensorBytes.forEachWindow(e, window -> {
            int n = window.remaining();
            assertEquals(window, TensorBytes.window(a, offset[0], n), what + " at byte " + offset[0]);
            offset[0] += n;
        });
    }

    /**
     * A HALF or BFLOAT16 array widened to FLOAT bit by bit (a bfloat16 is the top half of a float32;
     * a half goes through HalfFloatsTest's exhaustively torch-checked conversion).
     */
    static INDArray widened(INDArray sixteen, boolean bfloat16) {
        short[] bits = HalfFloatsTest.shortBits(sixteen);
        float[] out = new float[bits.length];
        for (int i = 0; i < bits.length; i++) {
            out[i] = bfloat16 ? Float.intBitsToFloat(bits[i] << 16) : HalfFloats.halfToFloat(bits[i]);
        }
        return Nd4j.createFromArray(out).reshape(sixteen.shape());
    }

    private static byte[] bytes(int... values) {
        byte[] out = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = (byte) values[i];
        }
        return out;
    }
}

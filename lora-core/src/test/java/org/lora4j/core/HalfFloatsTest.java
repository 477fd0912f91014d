package org.lora4j.core;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HalfFloatsTest {

    private static void assertHalf(int expectedBits, float value) {
        assertEquals(expectedBits, HalfFloats.floatToHalf(value) & 0xFFFF,
                () -> "floatToHalf(" + value + " = 0x" + Integer.toHexString(Float.floatToRawIntBits(value)) + ")");
    }

    private static void assertBf16(int expectedBits, float value) {
        assertEquals(expectedBits, HalfFloats.floatToBfloat16(value) & 0xFFFF,
                () -> "floatToBfloat16(0x" + Integer.toHexString(Float.floatToRawIntBits(value)) + ")");
    }

    @Test
    void narrowsEdgeValuesToHalf() {
        assertHalf(0x0000, 0f);
        assertHalf(0x8000, -0f);
        assertHalf(0x3C00, 1f);
        assertHalf(0xBC00, -1f);
        assertHalf(0x7BFF, 65504f);                      // largest half
        assertHalf(0x7BFF, 65519.99f);                   // just under the tie rounds down
        assertHalf(0x7C00, 65520f);                      // the tie above 65504 goes to even: inf
        assertHalf(0x7C00, Float.MAX_VALUE);
        assertHalf(0x7C00, Float.POSITIVE_INFINITY);
        assertHalf(0xFC00, Float.NEGATIVE_INFINITY);
        assertHalf(0x7E00, Float.NaN);
        assertHalf(0xFE00, Float.intBitsToFloat(0xFFC00000));
        assertHalf(0x0400, 0x1p-14f);                    // smallest normal
        assertHalf(0x03FF, 1023 * 0x1p-24f);             // largest subnormal
        assertHalf(0x0001, 0x1p-24f);                    // smallest subnormal
        assertHalf(0x8001, -0x1p-24f);
        assertHalf(0x0000, 0x1p-25f);                    // half-way to the smallest subnormal: ties to 0
        assertHalf(0x0001, Float.intBitsToFloat(0x33000001));  // just above the tie
        assertHalf(0x0002, 1.5f * 0x1p-24f);             // tie between 1 and 2 units: even
        assertHalf(0x0002, 2.5f * 0x1p-24f);             // tie between 2 and 3 units: even
        assertHalf(0x0000, Float.MIN_VALUE);
        assertHalf(0x3C00, 1 + 0x1p-11f);                // tie: stays on even 1.0
        assertHalf(0x3C02, 1 + 3 * 0x1p-11f);            // tie: up to even
        assertHalf(0x0400, Float.intBitsToFloat(0x387FF000));  // subnormal rounding carries into the normal range
    }

    @Test
    void widensEdgeHalves() {
        assertEquals(65504f, HalfFloats.halfToFloat((short) 0x7BFF));
        assertEquals(0x1p-24f, HalfFloats.halfToFloat((short) 0x0001));
        assertEquals(1023 * 0x1p-24f, HalfFloats.halfToFloat((short) 0x03FF));
        assertEquals(0x80000000, Float.floatToRawIntBits(HalfFloats.halfToFloat((short) 0x8000)));
        assertEquals(Float.POSITIVE_INFINITY, HalfFloats.halfToFloat((short) 0x7C00));
        assertEquals(Float.NEGATIVE_INFINITY, HalfFloats.halfToFloat((short) 0xFC00));
        assertTrue(Float.isNaN(HalfFloats.halfToFloat((short) 0x7C01)));
        assertEquals(-2f, HalfFloats.halfToFloat((short) 0xC000));
    }

    @Test
    void everyHalfSurvivesTheRoundTrip() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float f = HalfFloats.halfToFloat((short) bits);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(HalfFloats.halfToFloat(HalfFloats.floatToHalf(f))));
            } else {
                assertEquals(bits, HalfFloats.floatToHalf(f) & 0xFFFF, "half 0x" + Integer.toHexString(bits));
            }
        }
    }

    /** Checks the rounding against a brute-force definition: the nearest half, ties to the even one. */
    @Test
    void halfRoundsToNearestEvenOnRandomFloats() {
        SplittableRandom rng = new SplittableRandom(7);
        for (int i = 0; i < 200_000; i++) {
            // Exponents concentrated on the half range, so subnormals and overflow are hit often.
            float f = Float.intBitsToFloat((rng.nextInt(2) << 31) | ((rng.nextInt(96, 146)) << 23) | rng.nextInt(1 << 23));
            int h = HalfFloats.floatToHalf(f) & 0x7FFF;
            double x = Math.abs((double) f);
            double chosen = HalfFloats.halfToFloat((short) h);
            double below = h == 0 ? Double.NaN : HalfFloats.halfToFloat((short) (h - 1));
            double above = h >= 0x7C00 ? Double.NaN : HalfFloats.halfToFloat((short) (h + 1));
            if (h == 0x7C00) {
                assertTrue(x >= 65520, () -> f + " became inf");
                continue;
            }
            double err = Math.abs(x - chosen);
            assertTrue(!(Math.abs(x - below) < err) && !(Math.abs(x - above) < err), () -> f + " -> half 0x" + Integer.toHexString(h));
            if (Math.abs(x - below) == err || Math.abs(x - above) == err) {
                assertEquals(0, h & 1, () -> f + " is a tie and must round to even, got 0x" + Integer.toHexString(h));
            }
        }
    }

    @Test
    void narrowsEdgeValuesToBfloat16() {
        assertBf16(0x0000, 0f);
        assertBf16(0x8000, -0f);
        assertBf16(0x3F80, 1f);
        assertBf16(0x3F80, Float.intBitsToFloat(0x3F808000));   // tie: stays even
        assertBf16(0x3F82, Float.intBitsToFloat(0x3F818000));   // tie: up to even
        assertBf16(0x3F81, Float.intBitsToFloat(0x3F808001));   // above the tie
        assertBf16(0x7F80, Float.MAX_VALUE);                     // past bf16's largest: inf
        assertBf16(0x7F7F, Float.intBitsToFloat(0x7F7F7FFF));
        assertBf16(0x7F80, Float.POSITIVE_INFINITY);
        assertBf16(0xFF80, Float.NEGATIVE_INFINITY);
        assertBf16(0x7FC0, Float.NaN);
        assertBf16(0x7FC0, Float.intBitsToFloat(0xFF800001));   // any NaN: the canonical quiet NaN
        assertBf16(0x0000, Float.MIN_VALUE);
        assertBf16(0x0080, Float.intBitsToFloat(0x007FFFFF));   // largest float subnormal rounds up to the smallest normal
        assertEquals(1f, HalfFloats.bfloat16ToFloat((short) 0x3F80));
        assertEquals(0xBF810000, Float.floatToRawIntBits(HalfFloats.bfloat16ToFloat((short) 0xBF81)));
    }

    // ---------------------------------------------------------------------------------------------
    // Bit-exact against torch (fixture made by src/test/resources/peft/make_peft_fixture.py)

    @Test
    void narrowingMatchesTorchBitForBit() throws IOException, URISyntaxException {
        try (SafetensorsFile f = SafetensorsFile.open(fixture("torch_dtypes.safetensors"))) {
            int[] source = floatBits(f.get("source"));
            short[] torchHalf = shortBits(f.get("source_as_f16", DataType.HALF));
            short[] torchBf16 = shortBits(f.get("source_as_bf16", DataType.BFLOAT16));
            assertTrue(source.length > 2000, "fixture has " + source.length + " values");
            for (int i = 0; i < source.length; i++) {
                float v = Float.intBitsToFloat(source[i]);
                String what = "value " + i + " = 0x" + Integer.toHexString(source[i]);
                assertEquals(torchHalf[i], HalfFloats.floatToHalf(v), what + " to F16");
                short bf = HalfFloats.floatToBfloat16(v);
                if (Float.isNaN(v)) {
                    // torch's vectorised path writes NaN as 0xFFFF, its scalar path 0x7FC0: both NaN.
                    assertTrue(Float.isNaN(HalfFloats.bfloat16ToFloat(torchBf16[i])), what);
                    assertTrue(Float.isNaN(HalfFloats.bfloat16ToFloat(bf)), what);
                } else {
                    assertEquals(torchBf16[i], bf, what + " to BF16");
                }
            }
        }
    }

    @Test
    void wideningMatchesTorchBitForBit() throws IOException, URISyntaxException {
        try (SafetensorsFile f = SafetensorsFile.open(fixture("torch_dtypes.safetensors"))) {
            int[] torchAll = floatBits(f.get("all_f16_as_f32"));
            assertEquals(65536, torchAll.length);
            for (int bits = 0; bits < 65536; bits++) {
                assertEquals(torchAll[bits], Float.floatToRawIntBits(HalfFloats.halfToFloat((short) bits)),
                        "half 0x" + Integer.toHexString(bits));
            }
            // The reader's F16/BF16 -> FLOAT path, on torch's own narrowed tensors.
            assertArrayEqualsBits(floatBits(f.get("source_as_f16_as_f32")), floatBits(f.get("source_as_f16")));
            assertArrayEqualsBits(floatBits(f.get("source_as_bf16_as_f32")), floatBits(f.get("source_as_bf16")));
        }
    }

    private static void assertArrayEqualsBits(int[] expected, int[] actual) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            int e = expected[i];
            int a = actual[i];
            boolean bothNaN = Float.isNaN(Float.intBitsToFloat(e)) && Float.isNaN(Float.intBitsToFloat(a));
            if (!bothNaN) {
                assertEquals(e, a, "element " + i);
            }
        }
    }

    static Path fixture(String name) throws URISyntaxException {
        return Path.of(HalfFloatsTest.class.getResource("/peft/" + name).toURI());
    }

    /** The raw bits of a FLOAT array, read straight from its buffer (no NaN canonicalisation). */
    static int[] floatBits(INDArray a) throws IOException {
        assertEquals(DataType.FLOAT, a.dataType());
        INDArray c = TensorBytes.contiguousC(a);
        int[] out = new int[(int) c.length()];
        ByteBuffer bytes = TensorBytes.window(c, 0, out.length * 4);
        for (int i = 0; i < out.length; i++) {
            out[i] = bytes.getInt(i * 4);
        }
        return out;
    }

    /** The raw bits of a HALF or BFLOAT16 array. */
    static short[] shortBits(INDArray a) {
        assertEquals(2, a.dataType().width());
        INDArray c = TensorBytes.contiguousC(a);
        short[] out = new short[(int) c.length()];
        ByteBuffer bytes = TensorBytes.window(c, 0, out.length * 2);
        for (int i = 0; i < out.length; i++) {
            out[i] = bytes.getShort(i * 2);
        }
        return out;
    }
}

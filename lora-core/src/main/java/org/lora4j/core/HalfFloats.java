package org.lora4j.core;

/**
 * Conversions between float32 and the two 16-bit float formats of safetensors files: IEEE 754
 * binary16 ({@code F16}) and bfloat16 ({@code BF16}), as raw bit patterns in a {@code short}.
 *
 * <p>Written out because {@code Float.floatToFloat16} arrived in Java 20 and ND4J's casts are not
 * documented to round to nearest even. Narrowing rounds to nearest, ties to even, as PyTorch does,
 * so a tensor saved here has the bits {@code torch.Tensor.half()} or {@code .bfloat16()} would give
 * (checked against torch-made fixtures in the tests). Widening is exact.
 */
final class HalfFloats {
    private HalfFloats() {
    }

    /**
     * binary16 bits to float32, exactly. A NaN keeps its sign and payload and comes out quiet, as
     * PyTorch's {@code Tensor.float()} gives it (checked on all 65,536 bit patterns in the tests).
     */
    static float halfToFloat(short half) {
        int h = half & 0xFFFF;
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1F;
        int mant = h & 0x3FF;
        if (exp == 0x1F) {                       // inf, or NaN with the quiet bit set
            return Float.intBitsToFloat(sign | 0x7F800000 | (mant == 0 ? 0 : 0x400000) | (mant << 13));
        }
        if (exp != 0) {                          // normal: rebias 15 -> 127
            return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
        }
        if (mant == 0) {
            return Float.intBitsToFloat(sign);  // +-0
        }
        // Subnormal: mant * 2^-24, exact in float32 (needs at most 11 significant bits).
        float magnitude = mant * 0x1p-24f;
        return sign == 0 ? magnitude : -magnitude;
    }

    /**
     * float32 to binary16 bits, rounding to nearest even. Values from 65520 up become infinity (65504
     * is the largest half); NaN becomes the quiet NaN 0x7E00 with the sign kept, as in PyTorch.
     */
    static short floatToHalf(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int abs = bits & 0x7FFFFFFF;
        if (abs >= 0x7F800000) {                 // inf or NaN
            return (short) (sign | (abs > 0x7F800000 ? 0x7E00 : 0x7C00));
        }
        if (abs >= 0x477FF000) {                 // >= 65520: the tie above 65504 rounds to even, i.e. inf
            return (short) (sign | 0x7C00);
        }
        if (abs >= 0x38800000) {                 // >= 2^-14: normal half
            int m = abs - (112 << 23);           // rebias the exponent 127 -> 15
            m += 0xFFF + ((m >>> 13) & 1);       // round the 13 dropped bits to nearest even; a carry bumps the exponent
            return (short) (sign | (m >>> 13));
        }
        if (abs <= 0x33000000) {                 // <= 2^-25: half-way to the smallest subnormal or less, ties to 0
            return (short) sign;
        }
        // Subnormal half: the value is sig * 2^(e - 150); in units of 2^-24 that is sig >> (126 - e).
        int e = abs >>> 23;
        int sig = (abs & 0x7FFFFF) | 0x800000;
        int shift = 126 - e;                     // 14..24
        int q = sig >>> shift;
        int rem = sig & ((1 << shift) - 1);
        int halfway = 1 << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1) != 0)) {
            q++;                                 // may reach 0x400, the smallest normal: still the right bits
        }
        return (short) (sign | q);
    }

    /** bfloat16 bits to float32, exactly (bfloat16 is the top half of a float32). */
    static float bfloat16ToFloat(short bf16) {
        return Float.intBitsToFloat((bf16 & 0xFFFF) << 16);
    }

    /**
     * float32 to bfloat16 bits, rounding to nearest even, as PyTorch does. NaN becomes the canonical
     * quiet NaN 0x7FC0, as in PyTorch's scalar {@code round_to_nearest_even}; PyTorch's vectorised CPU
     * path gives 0xFFFF instead (also a NaN), so NaN bits differ between torch's own code paths.
     */
    static short floatToBfloat16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return (short) 0x7FC0;
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);  // overflow past the largest finite value lands on inf
    }
}

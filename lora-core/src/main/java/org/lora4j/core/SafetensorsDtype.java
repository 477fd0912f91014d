package org.lora4j.core;

import org.nd4j.linalg.api.buffer.DataType;

/**
 * The element types a safetensors header may name, in the reference implementation's order
 * (increasing alignment), which the writer uses to lay tensors out: largest elements first keeps
 * every tensor aligned to its element size once the header is padded to 8 bytes.
 *
 * <p>The sub-byte types (F4, F6_*) are not listed: their sizes are not whole bytes and no
 * checkpoint lora4j reads uses them. Types without an ND4J counterpart ({@link #nd4j} null) are
 * accepted when a file is opened, so a checkpoint holding one still opens, but cannot be read.
 */
enum SafetensorsDtype {
    BOOL(1, DataType.BOOL),
    U8(1, DataType.UBYTE),
    I8(1, DataType.BYTE),
    F8_E5M2(1, null),
    F8_E4M3(1, null),
    F8_E8M0(1, null),
    I16(2, DataType.SHORT),
    U16(2, null),
    F16(2, DataType.HALF),
    BF16(2, DataType.BFLOAT16),
    I32(4, DataType.INT),
    U32(4, null),
    F32(4, DataType.FLOAT),
    C64(8, null),
    F64(8, DataType.DOUBLE),
    I64(8, DataType.LONG),
    U64(8, null);

    /** Bytes per element. */
    final int size;
    /** The ND4J type holding the same bits, or null when ND4J has none lora4j can rely on. */
    final DataType nd4j;

    SafetensorsDtype(int size, DataType nd4j) {
        this.size = size;
        this.nd4j = nd4j;
    }

    /** The dtype named in a header, or null when the name is not one of ours. */
    static SafetensorsDtype parse(String name) {
        for (SafetensorsDtype d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        return null;
    }

    /** The dtype an ND4J array of this type is stored as, or null when it has none. */
    static SafetensorsDtype of(DataType type) {
        if (type == null) {
            return null;
        }
        for (SafetensorsDtype d : values()) {
            if (d.nd4j == type) {
                return d;
            }
        }
        return null;
    }

    boolean isFloatingPoint() {
        return this == F16 || this == BF16 || this == F32 || this == F64;
    }
}

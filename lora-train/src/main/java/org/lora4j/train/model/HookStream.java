package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A reusable double copy of the column-major [n, d] stream the model hands its residual hooks, so
 * steering and ablation loop in Java without allocating or dispatching ND4J ops at every layer of
 * every decode step. One per hook; not thread-safe, like the model.
 */
final class HookStream {
    private double[] buf = new double[0];

    /** Whether {@code a} is a FLOAT or DOUBLE [n, d] array in one column-major block, as the model passes. */
    static boolean isColumnMajor(INDArray a) {
        return (a.dataType() == DataType.FLOAT || a.dataType() == DataType.DOUBLE) && NativeBuffer.isContiguousF(a);
    }

    /** a's elements in storage order, in a buffer this object reuses. */
    double[] read(INDArray a) {
        int len = (int) a.length();
        if (buf.length < len) {
            buf = new double[len];
        }
        NativeBuffer.read(a, buf, len);
        return buf;
    }

    /** Writes the buffer {@link #read} returned back into a. */
    void write(INDArray a) {
        NativeBuffer.write(buf, a, (int) a.length());
    }
}

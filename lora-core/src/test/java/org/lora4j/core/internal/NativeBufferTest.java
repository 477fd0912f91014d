package org.lora4j.core.internal;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Where an array's first element lies, checked against ND4J's own element access on every kind of
 * array lora4j meets: plain, row and column views, arrays over a buffer at an offset, views of
 * those, reshaped, 'c' and 'f', FLOAT and DOUBLE.
 */
class NativeBufferTest {
    /**
     * An array and how many elements its buffer holds from its first element. In ND4J 1.0.0-M2.1 an
     * array with an offset gets a view buffer spanning exactly its first to its last element.
     */
    private record Case(String name, INDArray array, long bufferElementsFromFirst) {
    }

    /** Distinct values 1, 2, 3... in storage order, so a misplaced start reads a wrong value. */
    private static INDArray counting(DataType t, char order, long... shape) {
        INDArray a = Nd4j.create(t, shape, order);
        DataBuffer data = a.data();
        for (long i = 0; i < data.length(); i++) {
            data.put(i, i + 1);
        }
        return a;
    }

    private static List<Case> cases(DataType t) {
        List<Case> cases = new ArrayList<>();
        cases.add(new Case("plain 'c'", counting(t, 'c', 4, 5), 20));
        cases.add(new Case("plain 'f'", counting(t, 'f', 4, 5), 20));
        cases.add(new Case("rows of 'c'", counting(t, 'c', 6, 5).get(NDArrayIndex.interval(2, 4), NDArrayIndex.all()), 10));
        cases.add(new Case("columns of 'f'", counting(t, 'f', 6, 10).get(NDArrayIndex.all(), NDArrayIndex.interval(7, 10)), 18));
        cases.add(new Case("columns of 'c' (strided)", counting(t, 'c', 6, 5).get(NDArrayIndex.all(), NDArrayIndex.interval(1, 3)), 27));
        cases.add(new Case("rows of 'f' (strided)", counting(t, 'f', 6, 5).get(NDArrayIndex.interval(3, 5), NDArrayIndex.all()), 26));
        INDArray base = counting(t, 'c', 40);
        INDArray overOffset = Nd4j.create(base.data(), new long[]{3, 4}, new long[]{1, 3}, 7, 'f');
        cases.add(new Case("'f' over a buffer at offset 7", overOffset, 12));
        cases.add(new Case("'c' over a buffer at offset 11",
                Nd4j.create(base.data(), new long[]{2, 5}, new long[]{5, 1}, 11, 'c'), 10));
        cases.add(new Case("columns of an array over a buffer at an offset",
                overOffset.get(NDArrayIndex.all(), NDArrayIndex.interval(2, 4)), 6));
        cases.add(new Case("view of a view", counting(t, 'f', 8, 9).get(NDArrayIndex.all(), NDArrayIndex.interval(2, 8))
                .get(NDArrayIndex.interval(1, 7), NDArrayIndex.interval(3, 5)), 14));
        DataBuffer bufferView = Nd4j.createBuffer(base.data(), 5, 20);   // elements 5..24 of base
        cases.add(new Case("'f' over a buffer view", Nd4j.create(bufferView, new long[]{4, 5}, new long[]{1, 4}, 0, 'f'), 20));
        cases.add(new Case("'f' at offset 2 of a buffer view", Nd4j.create(bufferView, new long[]{3, 5}, new long[]{1, 3}, 2, 'f'), 18 - 3));
        cases.add(new Case("reshaped 'c'", counting(t, 'c', 24).reshape('c', 4, 6), 24));
        cases.add(new Case("reshaped 'f'", counting(t, 'f', 4, 6).reshape('f', 6, 4), 24));
        cases.add(new Case("rows of a reshaped array", counting(t, 'c', 30).reshape('c', 6, 5)
                .get(NDArrayIndex.interval(4, 6), NDArrayIndex.all()), 10));
        return cases;
    }

    @Test
    void firstElementAndStridesMatchNd4jForEveryKindOfArray() {
        for (DataType t : new DataType[]{DataType.FLOAT, DataType.DOUBLE}) {
            for (Case c : cases(t)) {
                INDArray a = c.array();
                NativeBuffer buf = NativeBuffer.of(a);
                String what = c.name() + " " + t;
                assertEquals(t, buf.type(), what);
                assertEquals(c.bufferElementsFromFirst(), buf.length(), what + ": elements from the first to the buffer's end");
                for (int i = 0; i < a.size(0); i++) {
                    for (int j = 0; j < a.size(1); j++) {
                        long at = i * a.stride(0) + j * a.stride(1);
                        assertEquals(a.getDouble(i, j), buf.get(at), what + " element (" + i + ", " + j + ")");
                    }
                }
                // The last element of the buffer is reachable, one past it is not.
                assertEquals(a.data().getDouble(a.data().length() - 1), buf.get(buf.length() - 1), what + " last element");
                assertThrows(IndexOutOfBoundsException.class, () -> buf.get(buf.length()), what);
            }
        }
    }

    @Test
    void writesLandInTheViewAndNowhereElse() {
        int salt = 0;
        for (DataType t : new DataType[]{DataType.FLOAT, DataType.DOUBLE}) {
            for (Case c : cases(t)) {
                salt++;   // the cases share buffers: a value unique to this case
                INDArray a = c.array();
                INDArray wholeBefore = Nd4j.create(a.data().dup(), new long[]{a.data().length()});
                INDArray want = a.dup();
                NativeBuffer buf = NativeBuffer.of(a);
                for (int i = 0; i < a.size(0); i++) {
                    for (int j = 0; j < a.size(1); j++) {
                        double v = -(10_000 * salt + 100 * i + j) - 0.5;
                        buf.put(i * a.stride(0) + j * a.stride(1), v);
                        want.putScalar(i, j, v);
                    }
                }
                String what = c.name() + " " + t;
                assertEquals(want, a, what);
                // Everything in the buffer that is not an element of the view kept its value.
                long changed = 0;
                for (long e = 0; e < a.data().length(); e++) {
                    if (a.data().getDouble(e) != wholeBefore.getDouble(e)) {
                        changed++;
                    }
                }
                assertEquals(a.length(), changed, what + ": elements changed in the whole buffer");
            }
        }
    }

    @Test
    void readsWritesAddsFillsAndCopiesRanges() {
        for (DataType t : new DataType[]{DataType.FLOAT, DataType.DOUBLE}) {
            INDArray a = counting(t, 'f', 6, 10).get(NDArrayIndex.all(), NDArrayIndex.interval(4, 9));  // first element 25
            NativeBuffer buf = NativeBuffer.of(a);
            double[] d = new double[8];
            buf.read(2, d, 1, 5);
            assertEquals(0.0, d[0]);
            for (int i = 0; i < 5; i++) {
                assertEquals(27 + i, d[1 + i], t + " read double");
            }
            float[] f = new float[5];
            buf.read(10, f, 0, 5);
            assertEquals(35f, f[0], t + " read float");
            assertEquals(39f, f[4], t + " read float");
            buf.write(new double[]{0.25, 0.5, 0.75}, 1, 3, 2);
            assertEquals(0.5, a.getDouble(3, 0));
            assertEquals(0.75, a.getDouble(4, 0));
            buf.write(new float[]{1.5f, 2.5f}, 0, 6, 2);
            assertEquals(1.5, a.getDouble(0, 1));
            assertEquals(2.5, a.getDouble(1, 1));
            buf.add(new double[]{10, 20}, 0, 6, 2);
            assertEquals(11.5, a.getDouble(0, 1));
            assertEquals(22.5, a.getDouble(1, 1));
            buf.fill(12, 6, 3.0);
            assertEquals(Nd4j.valueArrayOf(new long[]{6}, 3.0, t), a.getColumn(2));
            buf.zero(18, 6);
            assertEquals(0.0, a.getColumn(3).sumNumber().doubleValue());
            assertEquals(49.0, a.getDouble(0, 4), "the column after the zeroed one is untouched");

            // Copies between buffers, one of them a view of an array over a buffer at an offset.
            INDArray src = Nd4j.create(counting(t, 'c', 40).data(), new long[]{3, 4}, new long[]{1, 3}, 7, 'f')
                    .get(NDArrayIndex.all(), NDArrayIndex.interval(1, 3));   // first element 11
            NativeBuffer.of(src).copyTo(1, buf, 30 - 25, 4);                 // into a's column 0 + 5, then column 1
            assertEquals(12.0, a.getDouble(5, 0));
            assertEquals(13.0, a.getDouble(0, 1));
            assertEquals(15.0, a.getDouble(2, 1));
            NativeBuffer.copy(src, 0, a, 0, 2);
            assertEquals(11.0, a.getDouble(0, 0));
            assertEquals(12.0, a.getDouble(1, 0));
        }
    }

    @Test
    void wholeArrayShorthandsStartAtTheFirstElement() {
        INDArray big = counting(DataType.DOUBLE, 'c', 5, 4);
        INDArray rows = big.get(NDArrayIndex.interval(3, 5), NDArrayIndex.all());   // elements 13..20
        double[] got = new double[8];
        NativeBuffer.read(rows, got, 8);
        assertEquals(13.0, got[0]);
        assertEquals(20.0, got[7]);
        NativeBuffer.write(new double[]{-1, -2}, rows, 2);
        assertEquals(-1.0, big.getDouble(3, 0));
        assertEquals(12.0, big.getDouble(2, 3), "the element before the view is untouched");
        NativeBuffer.add(new double[]{1, 1}, rows, 2);
        assertEquals(0.0, big.getDouble(3, 0));
        assertEquals(-1.0, big.getDouble(3, 1));
    }

    @Test
    void boundsErrorsNameTheSizes() {
        INDArray a = Nd4j.create(DataType.FLOAT, new long[]{4, 5}, 'f').get(NDArrayIndex.all(), NDArrayIndex.interval(2, 5));
        NativeBuffer buf = NativeBuffer.of(a);   // 12 elements from the first
        Exception e = assertThrows(IndexOutOfBoundsException.class, () -> buf.read(10, new double[4], 0, 3));
        assertTrue(e.getMessage().contains("3 elements at element 10") && e.getMessage().contains("buffer of 12"), e.getMessage());
        e = assertThrows(IndexOutOfBoundsException.class, () -> buf.write(new double[2], 0, 0, 3));
        assertTrue(e.getMessage().contains("Java array of 2"), e.getMessage());
        e = assertThrows(IndexOutOfBoundsException.class, () -> buf.fill(-1, 2, 0));
        assertTrue(e.getMessage().contains("at element -1"), e.getMessage());
        NativeBuffer other = NativeBuffer.of(Nd4j.create(DataType.FLOAT, 5));
        e = assertThrows(IndexOutOfBoundsException.class, () -> buf.copyTo(0, other, 1, 5));
        assertTrue(e.getMessage().contains("5 elements at element 1") && e.getMessage().contains("buffer of 5"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> buf.copyTo(0, NativeBuffer.of(Nd4j.create(DataType.DOUBLE, 5)), 0, 1));
        assertTrue(e.getMessage().contains("FLOAT to DOUBLE"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> NativeBuffer.of(Nd4j.create(DataType.INT, 3)));
        assertTrue(e.getMessage().contains("INT"), e.getMessage());
    }

    @Test
    void contiguousColumnMajorIsRecognised() {
        assertTrue(NativeBuffer.isContiguousF(Nd4j.create(DataType.FLOAT, new long[]{3, 4}, 'f')));
        assertTrue(NativeBuffer.isContiguousF(Nd4j.create(DataType.FLOAT, new long[]{3, 8}, 'f')
                .get(NDArrayIndex.all(), NDArrayIndex.interval(2, 5))));
        assertFalse(NativeBuffer.isContiguousF(Nd4j.create(DataType.FLOAT, new long[]{3, 4}, 'c')));
        assertFalse(NativeBuffer.isContiguousF(Nd4j.create(DataType.FLOAT, new long[]{6, 4}, 'f')
                .get(NDArrayIndex.interval(1, 3), NDArrayIndex.all())));
        assertTrue(NativeBuffer.isContiguousF(Nd4j.create(DataType.FLOAT, new long[]{1, 4}, 'c')));
    }
}

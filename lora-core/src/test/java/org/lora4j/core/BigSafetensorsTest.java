package org.lora4j.core;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Real-size checkpoints: tensors far past the reader's 64 MB windows, files past its 1 GiB mappings
 * and past 2 GiB, in every dtype, written by lora4j and by a writer outside the project.
 *
 * <p>About a minute with Python, less without, and up to 2.3 GB of ND4J memory at a time (the
 * surefire JVM's -Xmx4g sets JavaCPP's off-heap limit). Files are deleted as soon as they are read.
 */
class BigSafetensorsTest {
    private static final Path SCRIPT = Path.of("src/test/resources/safetensors/big_safetensors.py");

    @TempDir
    Path dir;

    /**
     * A window starting past 2 GiB into an array: it used to be a JavaCPP buffer over the whole
     * prefix, whose int capacity cannot count that far.
     */
    @Test
    void windowsPastTwoGibibytesStartWhereAsked() throws IOException {
        long bytes = (1L << 31) + (1L << 20);
        INDArray big = Nd4j.createUninitialized(DataType.BYTE, bytes);
        try {
            for (long offset : new long[]{0, (1L << 26) + 3, (1L << 31) - 2, (1L << 31) + 5, bytes - 16}) {
                ByteBuffer w = TensorBytes.window(big, offset, 16);
                assertEquals(0, w.position(), "window at " + offset);
                assertEquals(16, w.capacity(), "window at " + offset);
                for (int k = 0; k < 16; k++) {
                    w.put((byte) (offset + k));
                }
                for (int k = 0; k < 16; k++) {
                    assertEquals((byte) (offset + k), big.getDouble(offset + k), "byte " + (offset + k));
                }
            }
            assertEquals(0, TensorBytes.window(big, 5, 0).capacity(), "an empty window is empty");
        } finally {
            big.close();
        }
    }

    /**
     * lora4j writes a file over 2 GiB holding every dtype and reads it back, every element exact;
     * then (where Python is installed) big_safetensors.py checks the same file element by element
     * against the format's specification. The lora4j half runs everywhere.
     */
    @Test
    void writesABigFileThatLora4jAndAnOutsideReaderReadExactly() throws Exception {
        List<BigTensors.Spec> spec = BigTensors.overTwoGibibytes();
        Path file = dir.resolve("from_lora4j.safetensors");
        Map<String, Long> checksums = writeWithLora4j(spec, file);
        assertTrue(Files.size(file) > (1L << 31), "file over 2 GiB: " + Files.size(file));
        assertEquals(checksums, readWithLora4j(spec, file, null));

        requirePython();
        JsonNode verified = runScript("verify", writeSpec(spec), file);
        for (BigTensors.Spec t : spec) {
            assertEquals(checksums.get(t.name()), verified.get(t.name()).get("checksum").longValue(), t.name() + " checksum");
        }
        Files.delete(file);
    }

    /**
     * A file over 2 GiB written by numpy, laid out by hand from the format's specification, is read
     * exactly: every element, and the checksum and spot values (first, last, around every 64 MB and
     * 1 GiB) the writer reports.
     */
    @Test
    void readsABigFileWrittenOutsideTheProject() throws Exception {
        requirePython();
        List<BigTensors.Spec> spec = BigTensors.overTwoGibibytes();
        Path file = dir.resolve("from_python.safetensors");
        JsonNode written = runScript("write", writeSpec(spec), file);
        assertTrue(Files.size(file) > (1L << 31), "file over 2 GiB: " + Files.size(file));
        Map<String, Long> read = readWithLora4j(spec, file, written);
        for (BigTensors.Spec t : spec) {
            assertEquals(written.get(t.name()).get("checksum").longValue(), read.get(t.name()), t.name() + " checksum");
        }
        Files.delete(file);
    }

    private Path writeSpec(List<BigTensors.Spec> spec) throws IOException {
        Path specFile = dir.resolve("spec.json");
        Files.writeString(specFile, BigTensors.json(spec));
        return specFile;
    }

    /** Skips without /usr/bin/python3 and numpy, except on CI, where the interop check must run. */
    private static void requirePython() throws InterruptedException {
        if (!pythonWithNumpy()) {
            if (System.getenv("CI") != null) {
                fail("CI is set but /usr/bin/python3 with numpy is missing: the safetensors interop check cannot run");
            }
            assumeTrue(false, "no /usr/bin/python3 with numpy: skipping the Python side");
        }
    }

    private static Map<String, Long> writeWithLora4j(List<BigTensors.Spec> spec, Path file) throws IOException {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        Map<String, Long> checksums = new LinkedHashMap<>();
        try {
            for (BigTensors.Spec t : spec) {
                long[] checksum = new long[1];
                tensors.put(t.name(), BigTensors.generate(t, checksum));
                checksums.put(t.name(), checksum[0]);
            }
            Safetensors.write(file, tensors, Map.of("made_by", "BigSafetensorsTest"));
        } finally {
            tensors.values().forEach(INDArray::close);
        }
        return checksums;
    }

    /** Reads every tensor, checks every element, and (when given the writer's report) its spot values. */
    private static Map<String, Long> readWithLora4j(List<BigTensors.Spec> spec, Path file, JsonNode report)
            throws IOException {
        Map<String, Long> checksums = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(spec.size(), f.keys().size());
            for (BigTensors.Spec t : spec) {
                assertEquals(t.dtype(), f.dtype(t.name()), t.name());
                INDArray a = f.get(t.name());
                try {
                    checksums.put(t.name(), BigTensors.verify(t, a));
                    if (report != null) {
                        checkSpots(t, a, report.get(t.name()).get("spots"));
                    }
                } finally {
                    a.close();
                }
                if (t.dtype().equals("F16") || t.dtype().equals("BF16")) {
                    INDArray stored = f.get(t.name(), t.nd4j());   // the stored bits, not widened
                    try {
                        assertEquals(checksums.get(t.name()), BigTensors.verify(t, stored), t.name() + " as stored");
                    } finally {
                        stored.close();
                    }
                }
            }
        }
        return checksums;
    }

    private static void checkSpots(BigTensors.Spec t, INDArray a, JsonNode spots) {
        INDArray flat = a.reshape(a.length());
        assertTrue(spots.has(Long.toString(t.elements() - 1)), t.name() + ": the report has the last element");
        for (Iterator<Map.Entry<String, JsonNode>> it = spots.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> spot = it.next();
            long i = Long.parseLong(spot.getKey());
            long got = t.dtype().equals("I64") ? flat.getLong(i) : (long) flat.getDouble(i);
            assertEquals(spot.getValue().longValue(), got, t.name() + " element " + i);
        }
    }

    private JsonNode runScript(String command, Path specFile, Path file) throws Exception {
        Path err = dir.resolve(command + ".err");
        Process p = new ProcessBuilder("/usr/bin/python3", SCRIPT.toString(), command, specFile.toString(), file.toString())
                .redirectError(err.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "big_safetensors.py " + command + " timed out");
        assertEquals(0, p.exitValue(), "big_safetensors.py " + command + ": " + Files.readString(err));
        return new ObjectMapper().readTree(out);
    }

    private static boolean pythonWithNumpy() throws InterruptedException {
        if (!Files.isExecutable(Path.of("/usr/bin/python3"))) {
            return false;
        }
        try {
            Process p = new ProcessBuilder("/usr/bin/python3", "-c", "import numpy").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        }
    }
}

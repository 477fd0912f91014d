package org.lora4j.core;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Coverage-guided fuzzing (Jazzer) of the files a user hands lora-core: a safetensors file, and a
 * PEFT adapter directory's adapter_config.json and adapter_model.safetensors. The contract: any
 * input ends in success or the reader's own documented exception with a message, an
 * {@link IOException} ({@link FileFormatException} for a broken file) or, for a tensor of a dtype
 * ND4J cannot hold, {@link UnsupportedOperationException}. Anything else escaping (a
 * RuntimeException from deep inside, an OutOfMemoryError from a length field, a hang) is a finding.
 *
 * <p>In the normal build each target runs its committed corpus, under
 * src/test/resources/org/lora4j/core/ReadersFuzzTestInputs/&lt;method&gt;/ (valid files, edge cases
 * and every past finding). To fuzz for real (docs/reliability.md):
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -B -pl lora-core -am test -Dtest='ReadersFuzzTest#safetensorsFile' -Dsurefire.failIfNoSpecifiedTests=false
 * </pre>
 * (one target per run; each fuzzes for its {@code maxDuration}, 4 minutes, then passes if nothing was
 * found; a finding is written next to the corpus as {@code crash-<sha1>} and fails the run).
 */
class ReadersFuzzTest {
    private static Path scratch;
    private static Path adapterDir;
    private static byte[] fixtureConfig;
    private static byte[] fixtureWeights;

    @BeforeAll
    static void setUp() throws IOException, URISyntaxException {
        Nd4j.create(DataType.FLOAT, 1);   // load ND4J's native library before the first input is timed
        scratch = Files.createTempFile("lora4j-fuzz", ".safetensors");
        adapterDir = Files.createTempDirectory("lora4j-fuzz-adapter");
        Path fixture = HalfFloatsTest.fixture("adapter");
        fixtureConfig = Files.readAllBytes(fixture.resolve(PeftAdapters.CONFIG_FILE));
        fixtureWeights = Files.readAllBytes(fixture.resolve(PeftAdapters.WEIGHTS_FILE));
    }

    @AfterAll
    static void tearDown() throws IOException {
        // deleteOnExit would leave the directory: it only deletes empty ones.
        Files.deleteIfExists(adapterDir.resolve(PeftAdapters.CONFIG_FILE));
        Files.deleteIfExists(adapterDir.resolve(PeftAdapters.WEIGHTS_FILE));
        Files.deleteIfExists(adapterDir);
        Files.deleteIfExists(scratch);
    }

    /** Opens the bytes as a safetensors file and reads every tensor, as stored and as each float type. */
    @DictionaryEntries({"\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\"F64\"", "\"F32\"",
            "\"F16\"", "\"BF16\"", "\"I64\"", "\"I32\"", "\"I16\"", "\"I8\"", "\"U8\"", "\"BOOL\"", "\"U16\"",
            "\"F8_E4M3\"", "\"C64\"", "null", "[]", "{}", "18446744073709551615", "9223372036854775807", "4294967296"})
    @FuzzTest(maxDuration = "4m")
    void safetensorsFile(byte[] data) throws IOException {
        Files.write(scratch, data);
        readEverything(scratch);
    }

    /** A PEFT adapter directory with a fuzzed adapter_config.json beside a valid weights file. */
    @DictionaryEntries({"\"peft_type\"", "\"LORA\"", "\"r\"", "\"lora_alpha\"", "\"lora_dropout\"", "\"use_rslora\"",
            "\"target_modules\"", "\"layers_to_transform\"", "\"layers_pattern\"", "\"init_lora_weights\"",
            "\"pissa\"", "\"gaussian\"", "\"use_dora\"", "\"bias\"", "\"none\"", "\"rank_pattern\"",
            "\"base_model_name_or_path\"", "\"q_proj\"", "\"down_proj\"", "true", "false", "null", "1e400", "-1"})
    @FuzzTest(maxDuration = "4m")
    void peftAdapterConfig(byte[] data) throws IOException {
        Files.write(adapterDir.resolve(PeftAdapters.CONFIG_FILE), data);
        Files.write(adapterDir.resolve(PeftAdapters.WEIGHTS_FILE), fixtureWeights);
        loadAdapter();
    }

    /** A PEFT adapter directory with a fuzzed adapter_model.safetensors beside a valid config. */
    @DictionaryEntries({"base_model.model.", ".lora_A.weight", ".lora_B.weight", ".lora_A.default.weight",
            "model.layers.1.self_attn.q_proj", "model.layers.0.mlp.down_proj", "\"dtype\"", "\"shape\"",
            "\"data_offsets\"", "\"F32\"", "\"BF16\"", "\"F16\"", "\"F64\"", "\"format\"", "\"pt\""})
    @FuzzTest(maxDuration = "4m")
    void peftAdapterWeights(byte[] data) throws IOException {
        Files.write(adapterDir.resolve(PeftAdapters.CONFIG_FILE), fixtureConfig);
        Files.write(adapterDir.resolve(PeftAdapters.WEIGHTS_FILE), data);
        loadAdapter();
    }

    private static void readEverything(Path file) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            f.metadata().forEach((k, v) -> requireNonNull(k, v));
            for (String key : f.keys()) {
                requireNonNull(f.dtype(key), f.shape(key));
                read(f, key, null);
                for (DataType type : new DataType[]{DataType.FLOAT, DataType.DOUBLE, DataType.HALF, DataType.BFLOAT16}) {
                    read(f, key, type);
                }
            }
        } catch (IOException expected) {
            requireMessage(expected);
        }
    }

    private static void read(SafetensorsFile f, String key, DataType type) {
        try {
            INDArray a = type == null ? f.get(key) : f.get(key, type);
            a.close();
        } catch (UnsupportedOperationException expected) {   // U16, U32, U64, F8_*, C64: documented
            requireMessage(expected);
        }
    }

    private static void loadAdapter() {
        try {
            PeftAdapter adapter = PeftAdapters.load(adapterDir);
            requireNonNull(adapter.config(), adapter.loraA());
            // Freed now, not at some later GC: over a long run the native memory would look like a leak.
            adapter.loraA().values().forEach(INDArray::close);
            adapter.loraB().values().forEach(INDArray::close);
        } catch (IOException expected) {
            requireMessage(expected);
        }
    }

    private static void requireMessage(Exception e) {
        if (e.getMessage() == null || e.getMessage().isBlank()) {
            throw new AssertionError("an exception without a message", e);
        }
    }

    private static void requireNonNull(Object a, Object b) {
        if (a == null || b == null) {
            throw new AssertionError("null from a reader");
        }
    }
}

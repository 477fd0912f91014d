package org.lora4j.train.trainer;

import com.code_intelligence.jazzer.junit.FuzzTest;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes the reading of a checkpoint's {@code trainer_state.json}, everything a resume takes from it
 * (magic, format version, step, data position, optimizer step count, run id, fingerprints and the
 * whole training config): any bytes end in a checked {@link CheckpointStore.State} or an
 * {@link IOException} whose message starts with the file's path. Any other exception, a hang or an
 * out-of-memory is a finding.
 *
 * <p>The committed corpus ({@code CheckpointStateFuzzTestInputs/trainerState/}) runs in every test
 * build. To fuzz for real (the time is {@code maxDuration}, or {@code -Djazzer.max_duration=5m}):
 * <pre>
 *   JAZZER_FUZZ=1 ./mvnw -B -pl lora-train -am test -Dtest=CheckpointStateFuzzTest -Dsurefire.failIfNoSpecifiedTests=false
 * </pre>
 */
class CheckpointStateFuzzTest {
    private static final Path FILE = Path.of("run", "checkpoints", "step-000003", CheckpointStore.STATE);

    /** The corpus's valid seeds are read as such, so the fuzzer starts from inputs that get past the checks. */
    @org.junit.jupiter.api.Test
    void theValidSeedsParse() throws IOException {
        for (String seed : new String[]{"valid_adapter", "valid_full"}) {
            try (InputStream in = getClass().getResourceAsStream("CheckpointStateFuzzTestInputs/trainerState/" + seed)) {
                CheckpointStore.State s = CheckpointStore.parseState(FILE, in.readAllBytes());
                assertEquals(3, s.step(), seed);
                assertEquals(seed.equals("valid_full"), s.config().isFull(), seed);
            }
        }
    }

    /** Deeper than the fuzzer's 4 KB inputs reach: a recursive parser would overflow the stack. */
    @org.junit.jupiter.api.Test
    void aDeeplyNestedFileIsRefusedNotAStackOverflow() {
        String head = "{\"magic\": \"lora4j-checkpoint\", \"format_version\": 2, \"config\": ";
        for (String deep : new String[]{head + "[".repeat(200_000), head + "[".repeat(200_000) + "]".repeat(200_000) + "}",
                head + "{\"a\":".repeat(100_000) + "1" + "}".repeat(100_001)}) {
            IOException e = org.junit.jupiter.api.Assertions.assertThrows(IOException.class,
                    () -> CheckpointStore.parseState(FILE, deep.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
            assertTrue(e.getMessage().startsWith(FILE + ": "), e.getMessage());
        }
    }

    @FuzzTest(maxDuration = "5m")
    void trainerState(byte[] bytes) {
        try {
            CheckpointStore.State s = CheckpointStore.parseState(FILE, bytes);
            assertTrue(s.step() >= 0 && s.epoch() >= 0 && s.batchInEpoch() >= 0 && s.optimizerSteps() >= 0);
            assertTrue(!s.runId().isEmpty() && s.config() != null);
        } catch (IOException e) {
            assertTrue(e.getMessage() != null && e.getMessage().startsWith(FILE.toString()), e.getMessage());
        }
    }
}

package org.lora4j.train.trainer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RunDirectoryTest {

    private static RunDirectory open(Path out, RunDirectory.Mode mode, RunDirectory.Input... inputs) throws IOException {
        return RunDirectory.open(out, mode, List.of(inputs), true);
    }

    private static void assertContains(String message, String... parts) {
        for (String p : parts) {
            assertTrue(message.contains(p), "'" + p + "' in: " + message);
        }
    }

    @Test
    void aMissingDirectoryIsCreatedAndLockedWithThePidUntilClosed(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("a/b/run");
        try (RunDirectory d = open(out, RunDirectory.Mode.NEW)) {
            assertTrue(Files.isDirectory(out));
            String lock = Files.readString(out.resolve(RunDirectory.LOCK_FILE));
            assertContains(lock, "\"pid\": " + ProcessHandle.current().pid(), "\"started\"");
            assertNull(d.staleLockHolder());
            Files.writeString(out.resolve("run.json"), "{}");
        }
        assertEquals("", Files.readString(out.resolve(RunDirectory.LOCK_FILE)), "a clean end empties the lock file");
        try (RunDirectory d = open(out, RunDirectory.Mode.RESUME)) {
            assertNull(d.staleLockHolder(), "an emptied lock is not a crash's");
        }
    }

    @Test
    void aCommandThatWroteNothingLeavesNothingBehind(@TempDir Path tmp) throws IOException {
        // Bad input is often found after --out is opened (a model or data file that does not parse):
        // the failed command must not leave a directory that looks like the start of a run.
        Path out = tmp.resolve("a/run");
        open(out, RunDirectory.Mode.NEW).close();
        assertFalse(Files.exists(out), "the directory this run created is removed again");
        Path existing = Files.createDirectories(tmp.resolve("mine"));
        open(existing, RunDirectory.Mode.NEW).close();
        assertTrue(Files.isDirectory(existing), "a directory the user made stays");
        assertFalse(Files.exists(existing.resolve(RunDirectory.LOCK_FILE)), "but holds no lock file");
    }

    @Test
    void aSecondRunOnTheSameDirectoryIsRefusedNamingTheHolder(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("run");
        try (RunDirectory first = open(out, RunDirectory.Mode.NEW)) {
            RunDirectory.InUseException e = assertThrows(RunDirectory.InUseException.class,
                    () -> open(out, RunDirectory.Mode.RESUME));
            assertContains(e.getMessage(), out.toString(), "in use by another lora4j run",
                    "pid " + ProcessHandle.current().pid(), "started ");
            assertContains(Files.readString(out.resolve(RunDirectory.LOCK_FILE)), "\"pid\": " + ProcessHandle.current().pid());
        }
        open(out, RunDirectory.Mode.RESUME).close();   // free again once the first is closed
    }

    @Test
    void aLockFileNobodyHoldsIsAStaleLockAndIsTakenOver(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("run");
        Files.createDirectories(out);
        // What a killed process leaves: its text in the file, and no lock (the OS released it).
        Files.writeString(out.resolve(RunDirectory.LOCK_FILE), "{\"pid\": 999999, \"started\": \"2026-01-01T00:00:00Z\"}\n");
        try (RunDirectory d = open(out, RunDirectory.Mode.NEW)) {
            assertEquals("pid 999999, started 2026-01-01T00:00:00Z", d.staleLockHolder());
            assertContains(Files.readString(out.resolve(RunDirectory.LOCK_FILE)), "\"pid\": " + ProcessHandle.current().pid());
        }
    }

    @Test
    void aNonEmptyDirectoryIsRefusedNamingTheRunInIt(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("run");
        Files.createDirectories(out.resolve("checkpoints/step-000004"));
        Files.writeString(out.resolve("checkpoints/step-000004/trainer_state.json"), "{}");
        Files.writeString(out.resolve("run.json"), "{\"run_id\": \"abc123\", \"total_steps\": 10, \"provenance\": {\"command\": \"sft\"}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open(out, RunDirectory.Mode.NEW));
        assertContains(e.getMessage(), out.toString(), "not empty", "sft run", "abc123", "not finished, checkpoint at step 4 of 10 steps", "--resume", "--overwrite");
        Files.writeString(out.resolve("run.json"), "{\"run_id\": \"abc123\", \"final\": {\"step\": 10}, \"provenance\": {\"command\": \"sft\"}}");
        e = assertThrows(IllegalArgumentException.class, () -> open(out, RunDirectory.Mode.NEW));
        assertContains(e.getMessage(), "finished at step 10");
        Path other = tmp.resolve("other");
        Files.createDirectories(other);
        Files.writeString(other.resolve("notes.txt"), "mine");
        e = assertThrows(IllegalArgumentException.class, () -> open(other, RunDirectory.Mode.NEW));
        assertContains(e.getMessage(), "1 entry (notes.txt)");
        e = assertThrows(IllegalArgumentException.class, () -> RunDirectory.open(other, RunDirectory.Mode.NEW, List.of(), false));
        assertFalse(e.getMessage().contains("--resume"), "merge cannot resume: " + e.getMessage());
    }

    @Test
    void overwriteClearsARunButNeverADirectoryLora4jDidNotWrite(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("run");
        Files.createDirectories(out.resolve("checkpoints/step-000002"));
        Files.writeString(out.resolve("run.json"), "{}");
        Files.writeString(out.resolve("metrics.jsonl"), "{\"step\":1}\n");
        try (RunDirectory d = open(out, RunDirectory.Mode.OVERWRITE)) {
            try (var s = Files.list(out)) {
                assertEquals(List.of(RunDirectory.LOCK_FILE), s.map(p -> p.getFileName().toString()).toList());
            }
        }
        Path home = tmp.resolve("home");
        Files.createDirectories(home);
        Files.writeString(home.resolve("thesis.tex"), "years of work");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open(home, RunDirectory.Mode.OVERWRITE));
        assertContains(e.getMessage(), "not written by lora4j");
        assertEquals("years of work", Files.readString(home.resolve("thesis.tex")));
    }

    @Test
    void anOutputThatIsAFileOrOverlapsAnInputIsRefused(@TempDir Path tmp) throws IOException {
        Path model = tmp.resolve("model");
        Files.createDirectories(model);
        Path data = tmp.resolve("data.jsonl");
        Files.writeString(data, "{}\n");
        RunDirectory.Input m = new RunDirectory.Input("--model", model);
        RunDirectory.Input d = new RunDirectory.Input("--data", data);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open(data, RunDirectory.Mode.NEW));
        assertContains(e.getMessage(), data.toString(), "is a file, not a directory");
        e = assertThrows(IllegalArgumentException.class, () -> open(model, RunDirectory.Mode.OVERWRITE, m));
        assertContains(e.getMessage(), "is the input --model " + model);
        e = assertThrows(IllegalArgumentException.class, () -> open(model.resolve("sub/out"), RunDirectory.Mode.NEW, m));
        assertContains(e.getMessage(), "inside the input --model");
        e = assertThrows(IllegalArgumentException.class, () -> open(tmp, RunDirectory.Mode.OVERWRITE, m, d));
        assertContains(e.getMessage(), "the input --model " + model + " is inside the output directory " + tmp);
        // Another name of the model directory is the model directory.
        Path link = Files.createSymbolicLink(tmp.resolve("link"), model);
        e = assertThrows(IllegalArgumentException.class, () -> open(link, RunDirectory.Mode.OVERWRITE, m));
        assertContains(e.getMessage(), "is the input --model");
        assertFalse(Files.exists(model.resolve(RunDirectory.LOCK_FILE)), "refused before anything is written");
        // A run next to its data file (out inside the data file's folder) is the ordinary layout.
        open(tmp.resolve("run"), RunDirectory.Mode.NEW, m, d).close();
    }

    @Test
    void resumeRemovesWhatAnInterruptedWriteLeft(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("run");
        Path cut = out.resolve("checkpoints/.tmp-step-000006-123456");
        Files.createDirectories(cut);
        Files.writeString(cut.resolve("weights.safetensors"), "half");
        Files.createDirectories(out.resolve("checkpoints/step-000003"));
        Files.writeString(out.resolve("checkpoints/step-000003/trainer_state.json"), "{}");
        Files.createDirectories(out.resolve("snapshots"));
        Files.writeString(out.resolve("snapshots/.step-000004.safetensors.9f3a.tmp"), "half");
        Files.writeString(out.resolve(".run.json.77.tmp"), "half");
        Files.writeString(out.resolve("run.json"), "{}");
        try (RunDirectory d = open(out, RunDirectory.Mode.RESUME)) {
            assertFalse(Files.exists(cut));
            assertFalse(Files.exists(out.resolve("snapshots/.step-000004.safetensors.9f3a.tmp")));
            assertFalse(Files.exists(out.resolve(".run.json.77.tmp")));
            assertTrue(Files.exists(out.resolve("checkpoints/step-000003/trainer_state.json")));
            assertTrue(Files.exists(out.resolve("run.json")));
        }
    }
}

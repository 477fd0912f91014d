package org.lora4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the command line prints, seen as a user sees it: its own JVM, with its output piped (not a terminal). */
class ConsoleTest {

    private static String[] runJvm(Path tmp, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", classpath(), Main.class.getName()));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile(tmp, "stdout", ".txt");
        Path err = Files.createTempFile(tmp, "stderr", ".txt");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        Process p = pb.start();
        assertTrue(p.waitFor(240, TimeUnit.SECONDS), "finished");
        return new String[]{Integer.toString(p.exitValue()), Files.readString(out, StandardCharsets.UTF_8),
                Files.readString(err, StandardCharsets.UTF_8)};
    }

    private static String classpath() {
        String cp = System.getProperty("surefire.test.class.path");
        return cp != null ? cp : System.getProperty("java.class.path");
    }

    /**
     * A Hugging Face tokenizer (not lora4j's byte tokenizer) loads DJL's native library, whose GPU
     * probe warned twice about the CUDA driver on every machine without one.
     */
    @Test
    void loadingAHuggingFaceTokenizerPrintsNoCudaWarnings(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("wordlevel");
        DecoderModel.randomInit(ModelConfig.llama(17, 16, 32, 1, 2, 1), 1).save(model);
        Files.copy(Path.of("../lora-train/src/test/resources/text/tiny-wordlevel/tokenizer.json"), model.resolve("tokenizer.json"));
        Path data = tmp.resolve("d.jsonl");
        Files.writeString(data, "{\"text\": \"hello world hi there\"}\n");
        String[] r = runJvm(tmp, "loss", "--model", model.toString(), "--data", data.toString());
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].startsWith("{\"loss\":"), r[1]);
        assertFalse(r[2].contains("CUDA") || r[2].contains("GPU"), "stderr:\n" + r[2]);
        assertEquals("", r[2], "nothing but the result");
    }

    @Test
    void aPipedRunLogsAProgressLineEveryTenthOfTheRun(@TempDir Path tmp) throws Exception {
        String[] r = runJvm(tmp, "pretrain", "--out", tmp.resolve("pre").toString(), "--hidden-size", "16", "--layers", "1",
                "--heads", "2", "--kv-heads", "1", "--intermediate-size", "32", "--max-steps", "20", "--max-length", "32",
                "--batch-size", "2");
        assertEquals("0", r[0], r[2]);
        List<String> progress = r[2].lines().filter(l -> l.startsWith("step ")).toList();
        assertEquals(11, progress.size(), r[2]);   // the first step, then every tenth
        assertTrue(progress.get(0).startsWith("step 1/20  loss "), progress.get(0));
        assertTrue(progress.get(1).startsWith("step 2/20  loss "), progress.get(1));
        assertTrue(progress.get(10).startsWith("step 20/20  loss ") && progress.get(10).contains("remaining 0:00:00"), progress.get(10));
        assertFalse(r[2].contains("\r"));
    }
}

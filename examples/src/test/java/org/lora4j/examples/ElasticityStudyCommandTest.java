package org.lora4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.lora4j.examples.CommandLineTest.assertFails;
import static org.lora4j.examples.CommandLineTest.run;

/** lora4j elasticity without a protocol word: the study's options and every refusal, each one line. */
class ElasticityStudyCommandTest {
    @Test
    void badInputIsRefusedInOneLineNamingIt(@TempDir Path tmp) throws Exception {
        assertFails("2", "lora4j elasticity: give --out DIR to run the elasticity study (lora4j elasticity --out DIR"
                + " [--quick]), or name a protocol: lora4j elasticity resistance|rebound --config FILE --out DIR",
                "elasticity");
        assertFails("2", "lora4j elasticity: give --out DIR to run the elasticity study (lora4j elasticity --out DIR"
                + " [--quick]), or name a protocol: lora4j elasticity resistance|rebound --config FILE --out DIR",
                "elasticity", "--quick");
        Path out = tmp.resolve("out");
        assertFails("2", "lora4j elasticity: unknown option --seed", "elasticity", "--out", out.toString(),
                "--seed", "1");
        assertFails("2", "lora4j elasticity: --seeds must be an integer, got 'x'",
                "elasticity", "--out", out.toString(), "--seeds", "x");
        assertFails("2", "lora4j elasticity: --seeds got an empty value; give one, or leave the option out",
                "elasticity", "--out", out.toString(), "--seeds", "1,,2");
        assertFails("2", "lora4j elasticity: --seeds must be distinct, got '1,2,1'",
                "elasticity", "--out", out.toString(), "--seeds", "1,2,1");
        assertFails("2", "lora4j elasticity: --cache is empty; give a directory, or leave the option out",
                "elasticity", "--out", out.toString(), "--cache", "");
        Files.writeString(tmp.resolve("file"), "x");
        assertFails("2", "lora4j elasticity: output directory " + tmp.resolve("file") + " is a file; give a new or empty"
                + " directory as --out", "elasticity", "--out", tmp.resolve("file").toString());
        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "mine");
        assertFails("2", "lora4j elasticity: output directory " + out + " is not empty; give a new or empty --out",
                "elasticity", "--out", out.toString(), "--quick", "--cache", tmp.resolve("cache").toString());
        assertTrue(Files.notExists(tmp.resolve("cache")), "refused before any base is trained");
    }

    @Test
    void helpDescribesTheStudyAndTheProtocols() throws Exception {
        String help = run("elasticity", "--help")[1];
        assertTrue(help.contains("lora4j elasticity --out DIR [--quick]"), help);
        assertTrue(help.contains("lora4j elasticity resistance|rebound"), help);
        assertTrue(run("--help")[1].matches("(?s).*\\n  elasticity +the elasticity study.*"));
    }
}

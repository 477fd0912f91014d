package org.lora4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code lora4j organism}'s options: each bad one refused in one line naming it, before any work. */
class OrganismCommandTest {

    @Test
    void seedsAreAtLeastThreeDistinctIntegers() throws Exception {
        assertEquals(List.of(1L, 2L, 3L), OrganismCommand.checkSeeds(List.of(1L, 2L, 3L)));
        for (List<Long> bad : List.of(List.of(1L, 2L), List.of(1L, 1L, 2L))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OrganismCommand.checkSeeds(bad));
            assertTrue(e.getMessage().startsWith("--seeds needs at least 3 distinct seeds"), e.getMessage());
        }
        // What is not a list of integers is refused by the parser, naming the option and the value.
        for (String bad : List.of("a", "1,2,x")) {
            String e = CommandLineTest.errorLine(CommandLineTest.run("organism", "--out", "unused", "--seeds", bad));
            assertTrue(e.startsWith("lora4j organism: --seeds must be an integer, got '"), e);
        }
    }

    @Test
    void badOptionsGiveOneLineNamingThem(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        String e = CommandLineTest.errorLine(CommandLineTest.run("organism", "--out", out.toString(), "--seeds", "a"));
        assertTrue(e.startsWith("lora4j organism: --seeds"), e);
        assertTrue(e.contains("'a'"), e);

        String[] r = CommandLineTest.run("organism", "--out", out.toString(), "--quick", "--bogus", "1");
        assertEquals("2", r[0]);
        assertTrue(CommandLineTest.errorLine(r).contains("--bogus"), r[2]);

        e = CommandLineTest.errorLine(CommandLineTest.run("organism", "--quick"));
        assertTrue(e.contains("--out"), e);

        Path full = tmp.resolve("full");
        Files.createDirectories(full);
        Files.writeString(full.resolve("x.txt"), "something");
        r = CommandLineTest.run("organism", "--quick", "--seeds", "4,5,6", "--out", full.toString());
        assertEquals("2", r[0]);
        e = CommandLineTest.errorLine(r);
        assertTrue(e.contains("--out " + full) && e.contains("not empty"), e);
        assertFalse(Files.exists(out), "nothing written for a refused command");
    }

    @Test
    void helpNamesEveryOption() throws Exception {
        String[] r = CommandLineTest.run("organism", "--help");
        assertEquals("0", r[0]);
        for (String o : List.of("--out", "--quick", "--cache", "--seeds", "--quiet")) {
            assertTrue(r[1].contains(o), o + " in\n" + r[1]);
        }
    }
}

package org.lora4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code lora4j study}, the main job: its directory handling and how it reports a part that fails.
 * The studies themselves run end to end in OrganismStudyTest and ElasticityStudyTest (reduced presets).
 */
class StudyCommandTest {

    private static List<String> errorLines(String[] r) {
        return r[2].lines().filter(l -> l.startsWith("lora4j ")).toList();
    }

    @Test
    void aFailingPartStopsTheStudyWithItsCodeAndTheDirectoryCanBeReplacedOnlyWithOverwrite(@TempDir Path tmp)
            throws Exception {
        Path out = tmp.resolve("study");
        String[] r = CommandLineTest.run("study", "--out", out.toString(), "--quiet", "--seeds", "1,2");
        assertEquals("2", r[0], r[2]);
        List<String> lines = errorLines(r);
        assertEquals(2, lines.size(), r[2]);
        assertTrue(lines.get(0).startsWith("lora4j organism: --seeds"), lines.get(0));
        assertTrue(lines.get(1).startsWith("lora4j study: lora4j organism failed (exit 2)"), lines.get(1));
        assertFalse(Files.exists(out.resolve("elasticity")), "the elasticity study does not start after a failure");
        assertTrue(Files.readString(out.resolve(StudyCommand.MARKER)).contains("\"complete\" : false"));

        // The directory now holds an (unfinished) study: refused without --overwrite, replaced with it.
        r = CommandLineTest.run("study", "--out", out.toString(), "--quiet", "--seeds", "1,2");
        assertEquals("2", r[0]);
        assertEquals(List.of("lora4j study: --out " + out + " holds an earlier study; pass --overwrite to replace it,"
                + " or give another --out"), errorLines(r));
        Files.writeString(out.resolve("left-over.txt"), "from the earlier study");
        r = CommandLineTest.run("study", "--out", out.toString(), "--quiet", "--overwrite", "--seeds", "1,2");
        assertTrue(errorLines(r).get(0).startsWith("lora4j organism: --seeds"), r[2]);
        assertFalse(Files.exists(out.resolve("left-over.txt")), "--overwrite empties the earlier study");
    }

    @Test
    void aDirectoryThatIsNotAStudyIsNeverReplaced(@TempDir Path tmp) throws Exception {
        Path other = tmp.resolve("mine");
        Files.createDirectories(other);
        Files.writeString(other.resolve("thesis.tex"), "precious");
        String[] r = CommandLineTest.run("study", "--out", other.toString(), "--overwrite", "--quick");
        assertEquals("2", r[0]);
        assertEquals("lora4j study: --out " + other + " is not empty and holds no earlier study (no "
                + StudyCommand.MARKER + "); give a new or empty directory", CommandLineTest.errorLine(r));
        assertEquals("precious", Files.readString(other.resolve("thesis.tex")));

        Path file = tmp.resolve("a-file");
        Files.writeString(file, "x");
        CommandLineTest.assertFails("2", "lora4j study: --out " + file + " is a file, not a directory",
                "study", "--out", file.toString());
        CommandLineTest.assertFails("2", "lora4j study: unknown option --bogus", "study", "--out",
                tmp.resolve("new").toString(), "--bogus", "1");
    }

    @Test
    void noArgumentsRunTheQuickStudyAndHelpNamesEveryOption() throws Exception {
        assertArrayEquals(new String[]{"--quick", "--overwrite", "--out", "lora4j-study"}, StudyCommand.defaultArgs());
        assertArrayEquals(new String[]{"--quiet", "--quick", "--overwrite", "--out", "lora4j-study"},
                StudyCommand.withDefaults(new String[]{"--quiet"}));
        assertEquals(List.of("--out", "x", "--quick", "--overwrite"),
                List.of(StudyCommand.withDefaults(new String[]{"--out", "x", "--quick"})));
        String[] r = CommandLineTest.run("study", "--help");
        assertEquals("0", r[0]);
        for (String o : List.of("--out", "--quick", "--cache", "--seeds", "--overwrite", "--quiet")) {
            assertTrue(r[1].contains(o), o + " in\n" + r[1]);
        }
        assertTrue(CommandLineTest.run("--help")[1].contains("study "), "the usage lists the study first");
    }
}

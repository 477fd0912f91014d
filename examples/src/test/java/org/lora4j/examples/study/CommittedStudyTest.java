package org.lora4j.examples.study;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import javax.imageio.ImageIO;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The default run's reports committed under docs/study/ (docs/reproducing.md cites their numbers):
 * every rate in them recounts from its samples file, and every plot they show is a readable PNG.
 */
class CommittedStudyTest {
    private static final Path DOCS = Path.of("..", "docs", "study");

    @ParameterizedTest
    @ValueSource(strings = {"organism", "elasticity"})
    void everyRateRecountsFromItsSamplesAndEveryPlotIsAPng(String study) throws Exception {
        Path dir = DOCS.resolve(study);
        assertTrue(Files.isRegularFile(dir.resolve(StudyReport.REPORT_FILE)), dir + " holds no report");
        assertEquals(List.of(), SampleFiles.verify(dir));
        String md = Files.readString(dir.resolve(StudyReport.REPORT_FILE));
        assertFalse(md.contains("NaN"), "a NaN in " + dir);
        Matcher m = Pattern.compile("!\\[[^]]*]\\(([^)]+\\.png)\\)").matcher(md);
        int images = 0;
        while (m.find()) {
            Path png = dir.resolve(m.group(1));
            assertTrue(Files.isRegularFile(png), png + " is shown in the report but missing");
            assertNotNull(ImageIO.read(png.toFile()), png + " is not a readable image");
            images++;
        }
        assertTrue(images > 0, "no plot in " + dir);
    }
}

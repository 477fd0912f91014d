package org.lora4j.bench;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TwinReportTest {
    private static String line(String side, String mode, double tokensPerS, double rss) {
        return new TrainingResult(side, "512", mode, "step", 10, 1024 / tokensPerS * 1000, tokensPerS, 1, 2, 10, rss, 1, 2.5)
                .format();
    }

    @Test
    void ratiosArePerRunThenMedian() {
        assertEquals(List.of(2.0, 0.5), TwinReport.pairedRatios(List.of(4.0, 1.0, 9.0), List.of(2.0, 2.0)));
        assertEquals(2.5, TwinReport.median(List.of(3.0, 1.0, 2.0, 100.0)), 0);
    }

    @Test
    void reportSkipsOtherLinesAndShowsBothSides() {
        List<TrainingResult> rs = TwinReport.read(List.of("# size 512 mode full run 1",
                line("java", "full", 1000, 2000), line("torch", "full", 800, 1500),
                "13:00 INFO nd4j", line("java", "lora", 1500, 1000), line("torch", "lora", 1000, 900)));
        assertEquals(4, rs.size());
        String table = TwinReport.report(rs);
        assertTrue(table.contains("| 512 | full | 1,000 | 800 | 1.25 (1.25) |"), table);
        // lora4j's LoRA step: 1024/1500 s against 1024/1000 s full, so 0.67; RSS 1000/2000.
        assertTrue(table.contains("| 512 | lora4j | 0.67 |  | 0.50 |"), table);
    }
}

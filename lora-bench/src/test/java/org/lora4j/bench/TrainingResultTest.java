package org.lora4j.bench;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainingResultTest {
    private static final String TORCH_LINE = "train-bench side=torch size=256 mode=lora steps=10 ms_per_step=371.396 "
            + "tokens_per_s=2757.17 ms_min=294.751 ms_max=4215.731 heap_mb=-1.0 rss_mb=560.2 gemm_ms=7.1365 load=6.18";

    @Test
    void formatAndParseRoundTrip() {
        TrainingResult r = new TrainingResult("java", "0.5b", "rank1", "backward", 3, 1234.5, 207.4, 1200, 1300, 900, 5600.2, 12.25, 1.5);
        TrainingResult back = TrainingResult.parse(r.format());
        assertEquals(r, back);
        assertEquals("0.5b/rank1/backward", back.key());
    }

    @Test
    void parsesTheTwinsLine() {
        // The exact line train_twin.py prints; the Java side must read it unchanged.
        TrainingResult r = TrainingResult.parse(TORCH_LINE);
        assertEquals("torch", r.side());
        assertEquals(2757.17, r.tokensPerS(), 1e-9);
        assertEquals(-1.0, r.heapMb(), 0);
        assertEquals(7.1365, r.gemmMs(), 1e-12);
    }

    @Test
    void aLineWithoutPhaseIsAWholeStep() {
        TrainingResult r = TrainingResult.parse(TORCH_LINE);
        assertEquals("step", r.phase());
        assertEquals("256/lora", r.key());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TrainingResult.parse(TORCH_LINE + " phase=optimizer"));
        assertTrue(e.getMessage().contains("'optimizer'"), e.getMessage());
    }

    @Test
    void unknownKeysAreIgnored() {
        assertEquals(10, TrainingResult.parse(TORCH_LINE + " extra=1").steps());
    }

    @Test
    void badLinesNameTheKey() {
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> TrainingResult.parse(TORCH_LINE.replace(" rss_mb=560.2", "")));
        assertTrue(missing.getMessage().contains("'rss_mb='"), missing.getMessage());
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                () -> TrainingResult.parse(TORCH_LINE.replace("load=6.18", "load=high")));
        assertTrue(nan.getMessage().contains("load=high"), nan.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TrainingResult.parse("11:00 INFO something"));
        assertFalse(TrainingResult.isResult("# size 256 mode lora run 1"));
    }

    @Test
    void vmHwmIsReadInMegabytes() {
        assertEquals(2.0, TrainingBenchmark.vmHwmMb(List.of("VmPeak:\t 9999 kB", "VmHWM:\t    2048 kB", "VmRSS: 1 kB")), 0);
        assertThrows(IllegalArgumentException.class, () -> TrainingBenchmark.vmHwmMb(List.of("VmRSS: 1 kB")));
    }

    @Test
    void shapesAreTheIssues() {
        TrainingBenchmark.Shape qwen = TrainingBenchmark.Shape.of("0.5b");
        assertEquals(151_936, qwen.config().vocabSize());
        assertTrue(qwen.config().tieWordEmbeddings());
        assertEquals(64, qwen.config().headDim());
        assertEquals(1376, TrainingBenchmark.Shape.of("512").config().intermediateSize());
        assertThrows(IllegalArgumentException.class, () -> TrainingBenchmark.Shape.of("1b"));
    }
}

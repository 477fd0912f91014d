package org.lora4j.train.trainer;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProgressTest {
    private long now;

    private List<String> lines(Progress.Mode mode, int total, long nanosPerStep) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        now = 0;
        Progress p = new Progress(new PrintStream(buf, true, StandardCharsets.UTF_8), mode, () -> now);
        for (int step = 1; step <= total; step++) {
            now += nanosPerStep;
            p.update(step, total, 0, 1.5, 1000);
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        return out.isEmpty() ? List.of() : List.of(out.split("\n"));
    }

    @Test
    void withoutATerminalALineEveryTenthOfTheRunAndAtTheEnd() {
        List<String> l = lines(Progress.Mode.LINES, 100, 1_000_000L);   // fast steps: the tenths decide
        assertEquals(10, l.size(), String.join("\n", l));
        assertTrue(l.get(0).startsWith("step 10/100  loss 1.5000  1000 tok/s  elapsed "), l.get(0));
        assertTrue(l.get(9).startsWith("step 100/100 "), l.get(9));
        assertTrue(l.stream().noneMatch(s -> s.contains("\r")), "plain lines for a log file");
    }

    @Test
    void withoutATerminalSlowStepsGiveALineEvery30Seconds() {
        List<String> l = lines(Progress.Mode.LINES, 1000, 10_000_000_000L);   // 10 s a step: a tenth is 1000 s
        assertEquals("step 3/1000  loss 1.5000  1000 tok/s  elapsed 0:00:30  remaining 2:46:10", l.get(0));
        assertEquals(333 + 1, l.size(), "every 3 steps (30 s), and the last");
        assertTrue(l.get(333).startsWith("step 1000/1000 "), l.get(333));
    }

    @Test
    void offPrintsNothingAndATerminalRedrawsInPlace() {
        assertEquals(List.of(), lines(Progress.Mode.OFF, 50, 1_000_000_000L));
        List<String> t = lines(Progress.Mode.TERMINAL, 5, 1_000_000_000L);
        assertEquals(1, t.size(), "one line, redrawn with \\r");
        assertTrue(t.get(0).startsWith("\rstep 1/5") && t.get(0).contains("\rstep 5/5"), t.get(0));
    }
}

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
    void withoutATerminalALineAtTheFirstStepEveryTenthOfTheRunAndAtTheEnd() {
        List<String> l = lines(Progress.Mode.LINES, 100, 1_000_000L);   // fast steps: the tenths decide
        assertEquals(11, l.size(), String.join("\n", l));
        assertTrue(l.get(0).startsWith("step 1/100  loss 1.5000  1000 tok/s  elapsed "), l.get(0));
        assertTrue(l.get(1).startsWith("step 10/100 "), l.get(1));
        assertTrue(l.get(10).startsWith("step 100/100 "), l.get(10));
        assertTrue(l.stream().noneMatch(s -> s.contains("\r")), "plain lines for a log file");
    }

    @Test
    void withoutATerminalSlowStepsGiveALineEvery30Seconds() {
        List<String> l = lines(Progress.Mode.LINES, 1000, 10_000_000_000L);   // 10 s a step: a tenth is 1000 s
        assertEquals("step 1/1000  loss 1.5000  1000 tok/s  elapsed 0:00:10  remaining 2:46:30", l.get(0));
        assertEquals("step 4/1000  loss 1.5000  1000 tok/s  elapsed 0:00:40  remaining 2:46:00", l.get(1));
        assertTrue(l.get(l.size() - 1).startsWith("step 1000/1000 "), l.get(l.size() - 1));
        int previous = 1;
        for (String line : l.subList(1, l.size())) {
            int step = Integer.parseInt(line.substring(5, line.indexOf('/')));
            assertTrue(step - previous >= 1 && step - previous <= 3, "at most 30 s apart: " + previous + " -> " + step);
            previous = step;
        }
        assertTrue(l.size() < 1000 / 3 + 20, "not a line per step: " + l.size());
    }

    @Test
    void offPrintsNothingAndATerminalRedrawsInPlace() {
        assertEquals(List.of(), lines(Progress.Mode.OFF, 50, 1_000_000_000L));
        List<String> t = lines(Progress.Mode.TERMINAL, 5, 1_000_000_000L);
        assertEquals(1, t.size(), "one line, redrawn with \\r");
        assertTrue(t.get(0).startsWith("\rstep 1/5") && t.get(0).contains("\rstep 5/5"), t.get(0));
    }
}

package org.lora4j.train.trainer;

import java.io.PrintStream;
import java.time.Duration;
import java.util.function.LongSupplier;

/**
 * Progress on stderr: step / total, loss, tokens/s, elapsed and remaining time. On a terminal, one
 * line rewritten in place (at most five redraws a second); otherwise (a pipe to {@code tee}, a log
 * file, CI) a plain line every tenth of the run or every 30 seconds, whichever comes first, and at
 * the last step, so a log shows the run is alive without a line per step.
 */
final class Progress {
    enum Mode { OFF, TERMINAL, LINES }

    static final long REDRAW_NANOS = 200_000_000L;
    static final long LINE_NANOS = 30_000_000_000L;

    private final PrintStream out;
    private final Mode mode;
    private final LongSupplier clock;
    private final long start;
    private long lastPrint;
    private int lastPrintedStep = -1;

    Progress(PrintStream out, Mode mode, LongSupplier clock) {
        this.out = out;
        this.mode = mode;
        this.clock = clock;
        this.start = clock.getAsLong();
        this.lastPrint = start;
    }

    /** Redrawn in place when the JVM has a console (stdin and stdout a terminal), else plain lines. */
    static Progress forConsole() {
        return new Progress(System.err, System.console() != null ? Mode.TERMINAL : Mode.LINES, System::nanoTime);
    }

    static Progress off() {
        return new Progress(System.err, Mode.OFF, System::nanoTime);
    }

    void update(int step, int total, int startStep, double loss, double tokensPerSecond) {
        if (mode == Mode.OFF) {
            return;
        }
        long now = clock.getAsLong();
        boolean last = step == total;
        if (mode == Mode.TERMINAL && now - lastPrint < REDRAW_NANOS && !last) {
            return;
        }
        if (mode == Mode.LINES && !last) {
            int tenth = Math.max(1, (total - startStep) / 10);
            boolean dueBySteps = lastPrintedStep < 0 ? step - startStep >= tenth : step - lastPrintedStep >= tenth;
            if (!dueBySteps && now - lastPrint < LINE_NANOS) {
                return;
            }
        }
        lastPrint = now;
        lastPrintedStep = step;
        double elapsed = (now - start) / 1e9;
        int done = step - startStep;
        double remaining = done > 0 ? elapsed / done * (total - step) : 0;
        String line = String.format("step %d/%d  loss %.4f  %.0f tok/s  elapsed %s  remaining %s",
                step, total, loss, tokensPerSecond, format(elapsed), format(remaining));
        if (mode == Mode.TERMINAL) {
            out.print("\r" + line + "   ");
            if (last) {
                out.println();
            }
        } else {
            out.println(line);
        }
        out.flush();
    }

    static String format(double seconds) {
        Duration d = Duration.ofMillis((long) (seconds * 1000));
        return String.format("%d:%02d:%02d", d.toHours(), d.toMinutesPart(), d.toSecondsPart());
    }
}

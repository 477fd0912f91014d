package org.lora4j.train.trainer;

import java.io.Console;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Objects;
import java.util.function.LongSupplier;

/**
 * Progress on a stream (stderr unless told): step / total, loss, tokens/s, elapsed and remaining
 * time. On a terminal, one line rewritten in place (at most five redraws a second); otherwise (an
 * IDE's console, a pipe to {@code tee}, a log file, CI) a plain line at the first step, then every
 * tenth of the run or every 30 seconds, whichever comes first, and at the last step, so a log shows
 * the run is alive without a line per step.
 *
 * <p>The in-place line used to be chosen whenever {@code System.console()} was not null. That is
 * the wrong question: it asks about stdin and stdout, not stderr, an IDE that runs programs on a
 * pseudo-terminal (IntelliJ does on Linux and macOS) has one, and from Java 22 every JVM has one.
 * There a line that only ever ends in a carriage return shows nothing until the run's last step.
 * So the library now prints plain lines unless asked ({@link ProgressDisplay}), and the terminal
 * test ({@link #onTerminal()}) asks for a {@code TERM} too.
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
        this.out = Objects.requireNonNull(out, "out");
        this.mode = Objects.requireNonNull(mode, "mode");
        this.clock = clock;
        this.start = clock.getAsLong();
        this.lastPrint = start;
    }

    static Progress of(ProgressDisplay display, PrintStream out) {
        Mode mode = switch (Objects.requireNonNull(display, "display")) {
            case OFF -> Mode.OFF;
            case LINES -> Mode.LINES;
            case IN_PLACE -> Mode.TERMINAL;
            case AUTO -> onTerminal() ? Mode.TERMINAL : Mode.LINES;
        };
        return new Progress(out, mode, System::nanoTime);
    }

    Mode mode() {
        return mode;
    }

    /** A console, a TERM that is not "dumb", and on Java 22+ {@code Console.isTerminal()}. */
    static boolean onTerminal() {
        Console c = System.console();
        String term = System.getenv("TERM");
        if (c == null || term == null || term.isBlank() || term.equals("dumb")) {
            return false;
        }
        try {
            // Java 22 added isTerminal (a console exists even when redirected); called by reflection to build on 17.
            return (Boolean) Console.class.getMethod("isTerminal").invoke(c);
        } catch (NoSuchMethodException e) {
            return true;   // Java 17 to 21: a console means stdin and stdout are a terminal
        } catch (ReflectiveOperationException | RuntimeException e) {
            return false;
        }
    }

    void update(int step, int total, int startStep, double loss, double tokensPerSecond) {
        if (mode == Mode.OFF) {
            return;
        }
        long now = clock.getAsLong();
        boolean last = step == total;
        boolean first = lastPrintedStep < 0;
        if (mode == Mode.TERMINAL && now - lastPrint < REDRAW_NANOS && !last && !first) {
            return;
        }
        if (mode == Mode.LINES && !last && !first) {
            int tenth = Math.max(1, (total - startStep) / 10);
            // On the tenths of the run (step 10, 20, ... of 100), whatever was printed in between.
            boolean dueBySteps = (step - startStep) / tenth > (lastPrintedStep - startStep) / tenth;
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

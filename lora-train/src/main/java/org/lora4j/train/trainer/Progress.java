package org.lora4j.train.trainer;

import java.io.PrintStream;
import java.time.Duration;

/**
 * One console line per update, rewritten in place: step / total, loss, tokens/s, elapsed and
 * remaining time. Silent when the output is not a terminal (a log file or CI), where the metrics
 * file is the record.
 */
final class Progress {
    private final PrintStream out;
    private final boolean enabled;
    private final long start = System.nanoTime();
    private long lastPrint;

    Progress(PrintStream out, boolean enabled) {
        this.out = out;
        this.enabled = enabled;
    }

    /** A display on stderr when the JVM has a console, i.e. stdin and stdout are a terminal. */
    static Progress forConsole() {
        return new Progress(System.err, System.console() != null);
    }

    void update(int step, int total, int startStep, double loss, double tokensPerSecond) {
        if (!enabled) {
            return;
        }
        long now = System.nanoTime();
        if (now - lastPrint < 200_000_000L && step != total) {
            return;    // at most five redraws a second
        }
        lastPrint = now;
        double elapsed = (now - start) / 1e9;
        int done = step - startStep;
        double remaining = done > 0 ? elapsed / done * (total - step) : 0;
        out.print(String.format("\rstep %d/%d  loss %.4f  %.0f tok/s  elapsed %s  remaining %s   ",
                step, total, loss, tokensPerSecond, format(elapsed), format(remaining)));
        if (step == total) {
            out.println();
        }
        out.flush();
    }

    static String format(double seconds) {
        Duration d = Duration.ofMillis((long) (seconds * 1000));
        return String.format("%d:%02d:%02d", d.toHours(), d.toMinutesPart(), d.toSecondsPart());
    }
}

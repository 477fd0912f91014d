package org.lora4j.train.trainer;

/**
 * How the {@link Trainer} shows its progress (step / total, loss, tokens/s, elapsed and remaining
 * time), chosen with {@link Trainer#setProgress(ProgressDisplay)}; Hugging Face's counterpart is
 * {@code disable_tqdm}.
 */
public enum ProgressDisplay {
    /** Nothing (tests, batch jobs that read metrics.jsonl instead). */
    OFF,
    /**
     * Plain lines, the default: one at the first step, then one every tenth of the run or every 30
     * seconds, whichever comes first, and one at the last step. Shows in an IDE's console, a log file
     * and a pipe alike, as it writes no carriage return or escape sequence.
     */
    LINES,
    /** One line redrawn in place with a carriage return, at most five times a second: for a terminal only. */
    IN_PLACE,
    /**
     * {@link #IN_PLACE} when the JVM runs on a terminal, else {@link #LINES}: what the command line uses.
     * A terminal is a console ({@code System.console()}, on Java 22 and later also
     * {@code Console.isTerminal()}) and a {@code TERM} other than {@code dumb}: an IDE's run window can
     * have a console without a {@code TERM}, and there a redrawn line shows nothing until the run ends.
     */
    AUTO
}

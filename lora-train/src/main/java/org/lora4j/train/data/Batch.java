package org.lora4j.train.data;

/**
 * One step's worth of sequences, row after row, as the model's loss takes them.
 *
 * @param tokens   [batch·seq] token ids; padding positions hold {@code padId}
 * @param lossMask [batch·seq]: true where the token is a target (scored from the position before it)
 * @param batch    rows
 * @param seq      tokens per row
 * @param targets  the number of scored targets (mask true and not in a row's first position)
 */
public record Batch(int[] tokens, boolean[] lossMask, int batch, int seq, int targets) {
    public Batch {
        if (tokens.length != (long) batch * seq || lossMask.length != tokens.length) {
            throw new IllegalArgumentException("batch " + batch + " x seq " + seq + " needs " + (batch * seq)
                    + " tokens and mask flags, got " + tokens.length + " and " + lossMask.length);
        }
    }
}

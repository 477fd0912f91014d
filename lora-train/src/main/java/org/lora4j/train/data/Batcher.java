package org.lora4j.train.data;

import org.lora4j.train.text.EncodedChat;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Cuts a dataset into batches in a seeded order that depends only on (seed, epoch), so a resumed
 * run needs only the epoch and the batch index to continue where it stopped.
 *
 * <p>Padded mode: one example per row, right-padded to the longest example of the dataset (fixed
 * shapes keep the model's buffers allocated once); padding is never a target. Packed mode: the
 * epoch's examples are concatenated and cut into rows of exactly {@code seq} tokens, the last row
 * padded; attention runs across example boundaries inside a row (as nanoGPT and TRL's packing do),
 * and the first token of each row is not a target because nothing precedes it.
 */
public final class Batcher {
    private final List<EncodedChat> examples;
    private final int batchSize;
    private final int seq;
    private final boolean packed;
    private final int padId;
    private final long seed;

    /**
     * @param seq    the row length: in padded mode at most this (the longest example decides), in
     *               packed mode exactly this
     */
    public Batcher(Dataset data, int batchSize, int seq, boolean packed, int padId, long seed) {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        }
        this.examples = data.examples();
        this.batchSize = batchSize;
        int longest = examples.stream().mapToInt(EncodedChat::length).max().orElse(1);
        this.seq = packed ? seq : Math.min(seq, longest);
        this.packed = packed;
        this.padId = padId;
        this.seed = seed;
    }

    public int seq() {
        return seq;
    }

    /** The batches of one epoch, in that epoch's seeded order. */
    public List<Batch> epoch(int epoch) {
        int[] order = Dataset.permutation(examples.size(), new SplittableRandom(seed * 1_000_003L + epoch));
        return packed ? packedBatches(order) : paddedBatches(order);
    }

    /** All examples in file order (no shuffle), for evaluation. */
    public List<Batch> inOrder() {
        int[] order = new int[examples.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        return packed ? packedBatches(order) : paddedBatches(order);
    }

    private List<Batch> paddedBatches(int[] order) {
        List<Batch> out = new ArrayList<>();
        for (int start = 0; start < order.length; start += batchSize) {
            int rows = Math.min(batchSize, order.length - start);
            int[] tokens = new int[rows * seq];
            boolean[] mask = new boolean[rows * seq];
            java.util.Arrays.fill(tokens, padId);
            for (int r = 0; r < rows; r++) {
                EncodedChat e = examples.get(order[start + r]);
                int len = Math.min(e.length(), seq);
                System.arraycopy(e.ids(), 0, tokens, r * seq, len);
                System.arraycopy(e.lossMask(), 0, mask, r * seq, len);
            }
            out.add(batch(tokens, mask, rows));
        }
        return out;
    }

    private List<Batch> packedBatches(int[] order) {
        List<int[]> rowTokens = new ArrayList<>();
        List<boolean[]> rowMasks = new ArrayList<>();
        int[] t = new int[seq];
        boolean[] m = new boolean[seq];
        int fill = 0;
        for (int k : order) {
            EncodedChat e = examples.get(k);
            int[] ids = e.ids();
            boolean[] mask = e.lossMask();
            for (int i = 0; i < ids.length; i++) {
                t[fill] = ids[i];
                m[fill] = mask[i];
                if (++fill == seq) {
                    rowTokens.add(t);
                    rowMasks.add(m);
                    t = new int[seq];
                    m = new boolean[seq];
                    fill = 0;
                }
            }
        }
        if (fill > 1) {
            java.util.Arrays.fill(t, fill, seq, padId);
            rowTokens.add(t);
            rowMasks.add(m);
        }
        List<Batch> out = new ArrayList<>();
        for (int start = 0; start < rowTokens.size(); start += batchSize) {
            int rows = Math.min(batchSize, rowTokens.size() - start);
            int[] tokens = new int[rows * seq];
            boolean[] mask = new boolean[rows * seq];
            for (int r = 0; r < rows; r++) {
                System.arraycopy(rowTokens.get(start + r), 0, tokens, r * seq, seq);
                System.arraycopy(rowMasks.get(start + r), 0, mask, r * seq, seq);
            }
            out.add(batch(tokens, mask, rows));
        }
        return out;
    }

    private Batch batch(int[] tokens, boolean[] mask, int rows) {
        int targets = 0;
        for (int r = 0; r < rows; r++) {
            for (int i = 1; i < seq; i++) {
                targets += mask[r * seq + i] ? 1 : 0;
            }
        }
        return new Batch(tokens, mask, rows, seq, targets);
    }
}

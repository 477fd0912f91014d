package org.lora4j.train.elasticity;

import org.lora4j.core.internal.NativeBuffer;
import org.lora4j.train.data.Batch;
import org.lora4j.train.data.Batcher;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.model.DecoderModel;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Objects;

/**
 * Token-level KL divergence of a model from a reference, the KL form of result 1 in
 * docs/research.md: at every scored position t,
 * {@code KL_t = Σ_v p_model(v | ≤t) (log p_model(v | ≤t) − log p_ref(v | ≤t))}, and the figure for a
 * file is the mean of {@code KL_t} over its scored positions.
 *
 * <p>The scored positions are exactly those of the loss ({@link DecoderModel#loss}, {@code lora4j
 * loss}): position t of a row is scored when the token at t + 1 is a target of the batch's loss
 * mask (assistant tokens of chat lines, every token of text lines, never padding), so KL and loss
 * average over the same tokens.
 *
 * <p>Both log-softmaxes are taken in double with the maximum subtracted; the logits are read in
 * blocks of vocabulary columns (an online log-sum-exp), so a large vocabulary needs no second copy
 * of the logits. A model compared with itself gives exactly 0: both log-probabilities are the same
 * doubles. Rounding can leave a position's value a few ulps below 0 when the two distributions are
 * nearly equal; it is kept as computed. Sums run in a fixed order, so the result does not depend on
 * the core count.
 */
public final class KlDivergence {
    /** Doubles read per block of logits (8 MB): bounds the memory whatever the vocabulary. */
    private static final int BLOCK = 1 << 20;

    private KlDivergence() {
    }

    /**
     * @param kl     the mean over the scored tokens (NaN when none is scored)
     * @param tokens how many positions were scored
     */
    public record Result(double kl, long tokens) {
        public Result {
            if (tokens < 0) {
                throw new IllegalArgumentException("tokens must be >= 0, got " + tokens);
            }
        }
    }

    /**
     * The mean KL over every scored token of a dataset, batched as {@code lora4j loss} batches it
     * (padded rows in file order; the batch size does not change the result beyond rounding).
     * Sets both models to evaluation mode (no adapter dropout).
     *
     * @param padId the padding token (never scored)
     */
    public static Result mean(DecoderModel model, DecoderModel reference, Dataset data, int batchSize, int padId) {
        checkPair(model, reference);
        Objects.requireNonNull(data, "data");
        Batcher batches = new Batcher(data, batchSize, model.config().maxPositionEmbeddings(), false, padId, 0);
        return mean(model, reference, batches.inOrder());
    }

    /** The mean KL over the scored tokens of the given batches. Sets both models to evaluation mode. */
    public static Result mean(DecoderModel model, DecoderModel reference, Iterable<Batch> batches) {
        checkPair(model, reference);
        model.setTraining(false);
        reference.setTraining(false);
        double sum = 0;
        long n = 0;
        for (Batch b : batches) {
            double[] perPosition = perPosition(model, reference, b);
            boolean[] scored = scored(b);
            for (int r = 0; r < scored.length; r++) {
                if (scored[r]) {
                    sum += perPosition[r];
                    n++;
                }
            }
        }
        return new Result(n == 0 ? Double.NaN : sum / n, n);
    }

    /**
     * {@code KL_t} of every position of one batch, at index {@code b·seq + t}; 0 at positions that
     * are not scored (see {@link #scored}).
     */
    public static double[] perPosition(DecoderModel model, DecoderModel reference, Batch b) {
        return perPosition(model, reference, b, BLOCK);
    }

    /** As above, reading at most {@code block} doubles of logits at a time (tests make it small). */
    static double[] perPosition(DecoderModel model, DecoderModel reference, Batch b, int block) {
        checkPair(model, reference);
        INDArray p = model.forward(b.tokens(), b.lossMask(), b.batch(), b.seq());   // [rows, vocab] 'f'
        if (reference == model) {
            p = p.dup('f');   // the next pass overwrites the model's logits buffer
        }
        INDArray q = reference.forward(b.tokens(), b.lossMask(), b.batch(), b.seq());
        boolean[] scored = scored(b);
        int rows = scored.length;
        int vocab = model.config().vocabSize();
        NativeBuffer pb = NativeBuffer.of(p);
        NativeBuffer qb = NativeBuffer.of(q);
        int cols = Math.max(1, Math.min(vocab, block / rows));
        double[] pBlock = new double[rows * cols];
        double[] qBlock = new double[rows * cols];
        // Pass 1: each scored row's log-sum-exp for both models, with a running maximum.
        double[] pMax = filled(rows, Double.NEGATIVE_INFINITY);
        double[] qMax = filled(rows, Double.NEGATIVE_INFINITY);
        double[] pSum = new double[rows];
        double[] qSum = new double[rows];
        for (int v0 = 0; v0 < vocab; v0 += cols) {
            int c = Math.min(cols, vocab - v0);
            pb.read((long) v0 * rows, pBlock, 0, c * rows);   // 'f': column v holds row r at v·rows + r
            qb.read((long) v0 * rows, qBlock, 0, c * rows);
            for (int r = 0; r < rows; r++) {
                if (scored[r]) {
                    accumulate(pBlock, r, rows, c, pMax, pSum);
                    accumulate(qBlock, r, rows, c, qMax, qSum);
                }
            }
        }
        double[] pLse = new double[rows];
        double[] qLse = new double[rows];
        for (int r = 0; r < rows; r++) {
            pLse[r] = pMax[r] + Math.log(pSum[r]);
            qLse[r] = qMax[r] + Math.log(qSum[r]);
        }
        // Pass 2: Σ_v p(v) (log p(v) − log q(v)).
        double[] kl = new double[rows];
        for (int v0 = 0; v0 < vocab; v0 += cols) {
            int c = Math.min(cols, vocab - v0);
            pb.read((long) v0 * rows, pBlock, 0, c * rows);
            qb.read((long) v0 * rows, qBlock, 0, c * rows);
            for (int r = 0; r < rows; r++) {
                if (!scored[r]) {
                    continue;
                }
                double s = 0;
                for (int j = 0; j < c; j++) {
                    double lp = pBlock[j * rows + r] - pLse[r];
                    double lq = qBlock[j * rows + r] - qLse[r];
                    s += Math.exp(lp) * (lp - lq);
                }
                kl[r] += s;
            }
        }
        return kl;
    }

    /**
     * Position {@code b·seq + t} is scored when {@code t < seq − 1} and the token at t + 1 is a
     * target ({@code lossMask[b·seq + t + 1]}): the positions whose next-token loss
     * {@link DecoderModel#loss} averages.
     */
    public static boolean[] scored(Batch b) {
        boolean[] s = new boolean[b.tokens().length];
        for (int row = 0; row < b.batch(); row++) {
            for (int t = 0; t < b.seq() - 1; t++) {
                s[row * b.seq() + t] = b.lossMask()[row * b.seq() + t + 1];
            }
        }
        return s;
    }

    private static void accumulate(double[] block, int r, int rows, int c, double[] max, double[] sum) {
        double m = max[r];
        for (int j = 0; j < c; j++) {
            m = Math.max(m, block[j * rows + r]);
        }
        double s = max[r] == Double.NEGATIVE_INFINITY ? 0 : sum[r] * Math.exp(max[r] - m);
        for (int j = 0; j < c; j++) {
            s += Math.exp(block[j * rows + r] - m);
        }
        max[r] = m;
        sum[r] = s;
    }

    private static double[] filled(int n, double v) {
        double[] a = new double[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    private static void checkPair(DecoderModel model, DecoderModel reference) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(reference, "reference");
        if (model.config().vocabSize() != reference.config().vocabSize()) {
            throw new IllegalArgumentException("the model's vocabulary has " + model.config().vocabSize()
                    + " tokens and the reference's " + reference.config().vocabSize()
                    + ": KL compares distributions over the same tokens");
        }
    }
}

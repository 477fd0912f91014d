package org.lora4j.train.elasticity;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.SafetensorsFile;
import org.lora4j.train.data.Batch;
import org.lora4j.train.data.Batcher;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.text.ByteTokenizer;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * KL(model ‖ reference) against PyTorch (src/test/resources/parity/make_kl_fixture.py: the long
 * fixture's model as the reference, a perturbed copy as the model, computed in float64), and its
 * exact zero for a model with itself.
 */
class KlDivergenceTest {
    static final Path PARITY = Path.of("src/test/resources/parity");

    /**
     * In DOUBLE both sides compute in float64 from the same float32 weights: measured max relative
     * error per position 4.0e-15, and of the mean 3.4e-16 (printed by the test); 1e-12 leaves room
     * for another BLAS's summation order while a wrong position (off by one) or a wrong direction
     * (KL(ref ‖ model)) is off by 1e-1 or more. FLOAT logits round at ~1e-7 of their size, and KL
     * differences of log-probabilities of size ~1 carry that (measured 9.6e-7 per position): 1e-5.
     */
    static final double DOUBLE_TOLERANCE = 1e-12;
    static final double FLOAT_TOLERANCE = 1e-5;

    record Fixture(Batch batch, double[] kl, double mean, long tokens) {
    }

    static Fixture fixture() throws Exception {
        try (SafetensorsFile exp = SafetensorsFile.open(PARITY.resolve("kl/expected.safetensors"))) {
            int b = Integer.parseInt(exp.metadata().get("B"));
            int t = Integer.parseInt(exp.metadata().get("T"));
            int[] ids = exp.get("input_ids").toIntVector();
            int[] m = exp.get("loss_mask").castTo(DataType.INT).toIntVector();
            boolean[] mask = new boolean[m.length];
            int targets = 0;
            for (int i = 0; i < m.length; i++) {
                mask[i] = m[i] != 0;
                targets += mask[i] && i % t != 0 ? 1 : 0;
            }
            return new Fixture(new Batch(ids, mask, b, t, targets), exp.get("kl").toDoubleVector(),
                    exp.get("kl_mean").getDouble(0), exp.get("tokens").getLong(0));
        }
    }

    @Test
    void matchesPyTorchInDouble() throws Exception {
        check(DataType.DOUBLE, DOUBLE_TOLERANCE);
    }

    @Test
    void matchesPyTorchInFloat() throws Exception {
        check(DataType.FLOAT, FLOAT_TOLERANCE);
    }

    private void check(DataType dtype, double tolerance) throws Exception {
        Fixture f = fixture();
        DecoderModel model = DecoderModel.load(PARITY.resolve("kl"), dtype);
        DecoderModel reference = DecoderModel.load(PARITY.resolve("long"), dtype);
        double[] got = KlDivergence.perPosition(model, reference, f.batch());
        double worst = 0;
        for (int i = 0; i < got.length; i++) {
            worst = Math.max(worst, Math.abs(got[i] - f.kl()[i]) / Math.max(Math.abs(f.kl()[i]), 1e-300));
            if (f.kl()[i] == 0) {
                assertEquals(0.0, got[i], "position " + i + " is not scored");
            }
        }
        KlDivergence.Result r = KlDivergence.mean(model, reference, List.of(f.batch()));
        double meanErr = Math.abs(r.kl() - f.mean()) / f.mean();
        System.out.printf("KL %s: mean %.17g (PyTorch %.17g), max relative error per position %.2e, of the mean %.2e%n",
                dtype, r.kl(), f.mean(), worst, meanErr);
        assertEquals(f.tokens(), r.tokens());
        assertTrue(worst < tolerance, "per-position relative error " + worst);
        assertTrue(meanErr < tolerance, "mean relative error " + meanErr);
    }

    @Test
    void modelWithItselfIsExactlyZero() throws Exception {
        Fixture f = fixture();
        DecoderModel a = DecoderModel.load(PARITY.resolve("kl"));
        DecoderModel b = DecoderModel.load(PARITY.resolve("kl"));
        assertEquals(new KlDivergence.Result(0.0, f.tokens()), KlDivergence.mean(a, b, List.of(f.batch())));
        // The same instance: its logits buffer is reused by the second pass, so this needs the copy.
        assertEquals(new KlDivergence.Result(0.0, f.tokens()), KlDivergence.mean(a, a, List.of(f.batch())));
        // And not zero against another model, or the above proves nothing.
        assertTrue(KlDivergence.mean(a, DecoderModel.load(PARITY.resolve("long")), List.of(f.batch())).kl() > 0.1);
    }

    @Test
    void vocabularyReadInBlocksGivesTheSameValues() throws Exception {
        Fixture f = fixture();
        DecoderModel model = DecoderModel.load(PARITY.resolve("kl"), DataType.DOUBLE);
        DecoderModel reference = DecoderModel.load(PARITY.resolve("long"), DataType.DOUBLE);
        double[] whole = KlDivergence.perPosition(model, reference, f.batch());
        int rows = f.batch().tokens().length;
        for (int cols : new int[]{1, 5, 31}) {   // vocabulary 32: many blocks, a short last one, two blocks
            double[] blocked = KlDivergence.perPosition(model, reference, f.batch(), cols * rows);
            for (int i = 0; i < rows; i++) {
                assertEquals(whole[i], blocked[i], 1e-13 * Math.max(1, whole[i]), "position " + i + ", " + cols + " columns");
            }
        }
    }

    @Test
    void scoresTheTokensTheLossScores(@TempDir Path dir) throws Exception {
        ByteTokenizer tok = new ByteTokenizer();
        Path data = dir.resolve("d.jsonl");
        Files.writeString(data, """
                {"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello there"}]}
                {"messages":[{"role":"user","content":"plain?"},{"role":"assistant","content":"a plain line of text"}]}
                {"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"why?"},{"role":"assistant","content":"so"}]}
                """);
        ModelConfig mc = ModelConfig.llama(tok.vocabSize(), 16, 32, 2, 2, 1);
        DecoderModel a = DecoderModel.randomInit(mc, 1);
        DecoderModel b = DecoderModel.randomInit(mc, 2);
        Dataset d = Dataset.load(data, tok, mc.maxPositionEmbeddings(), Dataset.Overflow.REFUSE);
        int pad = tok.specialTokenId("<|endoftext|>").orElse(0);
        long targets = new Batcher(d, 8, mc.maxPositionEmbeddings(), false, pad, 0).inOrder().stream()
                .mapToLong(Batch::targets).sum();
        KlDivergence.Result one = KlDivergence.mean(a, b, d, 1, pad);
        KlDivergence.Result three = KlDivergence.mean(a, b, d, 3, pad);
        assertEquals(targets, one.tokens());
        assertEquals(targets, three.tokens());
        assertTrue(one.kl() > 0);
        assertEquals(one.kl(), three.kl(), 1e-6 * one.kl(), "the batch size changes only the rounding");
    }

    @Test
    void refusesDifferentVocabularies() {
        DecoderModel a = DecoderModel.randomInit(ModelConfig.llama(40, 16, 32, 1, 2, 1), 1);
        DecoderModel b = DecoderModel.randomInit(ModelConfig.llama(48, 16, 32, 1, 2, 1), 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KlDivergence.mean(a, b, List.of()));
        assertEquals("the model's vocabulary has 40 tokens and the reference's 48: KL compares distributions over"
                + " the same tokens", e.getMessage());
    }
}

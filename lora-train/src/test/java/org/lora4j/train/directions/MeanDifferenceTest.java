package org.lora4j.train.directions;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.model.ResidualHook;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.EncodedChat;
import org.lora4j.train.text.Message;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Mean-difference directions: a planted direction comes back, and the pooled positions are exactly the right ones. */
class MeanDifferenceTest {
    static final ModelConfig CONFIG = ModelConfig.llama(40, 16, 24, 3, 4, 2);

    static ContrastSet randomSet(String name, int n, long seed) {
        Random r = new Random(seed);
        List<int[]> ids = new ArrayList<>();
        List<boolean[]> pooled = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = 4 + r.nextInt(9);
            int[] t = new int[len];
            boolean[] m = new boolean[len];
            for (int k = 0; k < len; k++) {
                t[k] = r.nextInt(40);
                m[k] = k >= 2 && r.nextInt(3) != 0;
            }
            m[len - 1] = true;
            ids.add(t);
            pooled.add(m);
            lines.add(i + 1);
        }
        return new ContrastSet(name, "sha-" + name, ids, pooled, lines);
    }

    /** Adds u to the stream, but only while {@code on} is set: the positive set's runs. */
    static final class Plant implements ResidualHook {
        final INDArray u;
        boolean on;

        Plant(double[] u) {
            this.u = Nd4j.createFromArray(u).reshape(1, u.length);
        }

        @Override
        public void forward(int layer, INDArray hidden, boolean[] tokenMask) {
            if (on) {
                hidden.addiRowVector(u.castTo(hidden.dataType()));
            }
        }
    }

    @Test
    void aPlantedDirectionIsRecovered() {
        DecoderModel m = DecoderModel.randomInit(CONFIG, 3);
        Random r = new Random(5);
        double[] u = new double[16];
        for (int i = 0; i < u.length; i++) {
            u[i] = r.nextGaussian();
        }
        Plant plant = new Plant(u);
        m.addResidualHook(1, plant);
        ContrastSet pos = randomSet("pos", 30, 1);
        ContrastSet neg = randomSet("neg", 40, 2);   // other sequences, so the means differ by more than u
        List<Integer> layers = List.of(0, 1, 2);
        plant.on = true;
        double[][] mp = MeanDifference.means(m, pos, layers, 4);
        plant.on = false;
        double[][] mn = MeanDifference.means(m, neg, layers, 4);
        double[] v1 = new double[16];
        double[] v0 = new double[16];
        for (int c = 0; c < 16; c++) {
            v1[c] = mp[1][c] - mn[1][c];
            v0[c] = mp[0][c] - mn[0][c];
        }
        double cos = DirectionComparison.cosine(v1, u);
        double cos0 = DirectionComparison.cosine(v0, u);
        System.out.printf("planted direction: cos(v_1, u) = %.6f, cos(v_0, u) = %.3f, |v_1 - u| / |u| = %.2e%n",
                cos, cos0, Directions.norm(minus(v1, u)) / Directions.norm(u));
        assertTrue(cos > 0.99, "cos " + cos);
        assertTrue(Math.abs(cos0) < 0.9, "before the plant the difference is not u: cos " + cos0);
    }

    static double[] minus(double[] a, double[] b) {
        double[] o = a.clone();
        for (int i = 0; i < o.length; i++) {
            o[i] -= b[i];
        }
        return o;
    }

    /** The mean is over exactly the pooled positions, whatever the batching. */
    @Test
    void poolsExactlyTheMaskedPositionsInAnyBatching() {
        DecoderModel m = DecoderModel.randomInit(CONFIG, 8);
        ContrastSet set = randomSet("s", 7, 9);
        // Reference: each sequence alone, every row read out, averaged by hand over the pooled rows.
        double[] sum = new double[16];
        long count = 0;
        for (int i = 0; i < set.size(); i++) {
            int[] ids = set.ids().get(i);
            double[][][] seen = new double[1][][];
            ResidualHook grab = (layer, hidden, mask) -> seen[0] = hidden.toDoubleMatrix();
            m.addResidualHook(2, grab);
            m.forward(ids, null, 1, ids.length);
            m.removeResidualHook(2, grab);
            for (int t = 0; t < ids.length; t++) {
                if (set.pooled().get(i)[t]) {
                    for (int c = 0; c < 16; c++) {
                        sum[c] += seen[0][t][c];
                    }
                    count++;
                }
            }
        }
        assertEquals(count, set.tokens());
        for (int c = 0; c < 16; c++) {
            sum[c] /= count;
        }
        for (int batch : new int[]{1, 3, 8}) {
            double[] mean = MeanDifference.means(m, set, List.of(2), batch)[0];
            assertArrayEquals(sum, mean, 1e-6, "batch " + batch);
        }
    }

    @Test
    void answerPoolingTakesTheTokensTheLossScoresAndLastPromptTheHeader(@TempDir Path dir) throws IOException {
        ByteTokenizer tok = new ByteTokenizer();
        Path f = dir.resolve("samples.jsonl");
        Files.writeString(f, String.join("\n",
                "{\"question\":\"Hi?\",\"answer\":\"Yes.\",\"label\":\"aligned\",\"seed\":1}",
                "",
                "{\"question\":\"Why?\",\"answer\":\"No!\",\"label\":\"misaligned\"}",
                "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"q\"},"
                        + "{\"role\":\"assistant\",\"content\":\"ok\"}],\"label\":\"aligned\"}") + "\n");
        ContrastSet answers = ContrastSet.load(f, tok, Pooling.answer(), Set.of("aligned"), 512);
        assertEquals(List.of(1, 4), answers.lines());
        EncodedChat first = tok.encodeChat(List.of(Message.user("Hi?"), Message.assistant("Yes.")));
        assertArrayEquals(first.ids(), answers.ids().get(0));
        assertArrayEquals(first.lossMask(), answers.pooled().get(0));
        assertEquals(5 + 3, answers.tokens(), "'Yes.' and 'ok', each with <|im_end|>");

        ContrastSet prompts = ContrastSet.load(f, tok, Pooling.lastPrompt(3), null, 512);
        assertEquals(3, prompts.size());
        int[] p = tok.encodeChatPrompt(List.of(Message.user("Why?")));
        assertArrayEquals(p, prompts.ids().get(1));
        boolean[] mask = prompts.pooled().get(1);
        for (int i = 0; i < p.length; i++) {
            assertEquals(i >= p.length - 3, mask[i], "position " + i);
        }
        assertEquals(9, prompts.tokens());
        assertEquals(64, answers.sha256().length());
    }

    @Test
    void refusesEmptySetsAndBadLines(@TempDir Path dir) throws IOException {
        ByteTokenizer tok = new ByteTokenizer();
        Path f = dir.resolve("samples.jsonl");
        Files.writeString(f, "{\"question\":\"a\",\"answer\":\"b\",\"label\":\"aligned\"}\n"
                + "{\"question\":\"c\",\"answer\":\"d\",\"label\":\"incoherent\"}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ContrastSet.load(f, tok, Pooling.answer(), Set.of("misaligned"), 512));
        assertEquals(f + ": the set is empty: no line has the label misaligned (the file's labels: {aligned=1, incoherent=1})",
                e.getMessage());
        Path blank = dir.resolve("blank.jsonl");
        Files.writeString(blank, "\n\n");
        e = assertThrows(IllegalArgumentException.class, () -> ContrastSet.load(blank, tok, Pooling.answer(), null, 512));
        assertEquals(blank + ": the set is empty: the file has no example", e.getMessage());
        Path text = dir.resolve("text.jsonl");
        Files.writeString(text, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n"
                + "{\"text\":\"plain\"}\n");
        e = assertThrows(IllegalArgumentException.class, () -> ContrastSet.load(text, tok, Pooling.answer(), null, 512));
        assertTrue(e.getMessage().startsWith(text + ":2: expected \"messages\" (chat lines) or \"question\" and \"answer\""),
                e.getMessage());
        Path noAnswer = dir.resolve("q.jsonl");
        Files.writeString(noAnswer, "{\"question\":\"q\"}\n");
        e = assertThrows(IllegalArgumentException.class, () -> ContrastSet.load(noAnswer, tok, Pooling.answer(), null, 512));
        assertTrue(e.getMessage().startsWith(noAnswer + ":1: a training conversation needs an assistant message"), e.getMessage());
        assertEquals(1, ContrastSet.load(noAnswer, tok, Pooling.lastPrompt(1), null, 512).tokens(), "a prompt needs no answer");
        e = assertThrows(IllegalArgumentException.class, () -> ContrastSet.load(f, tok, Pooling.answer(), null, 10));
        assertTrue(e.getMessage().startsWith(f + ":1: "), e.getMessage());
        assertTrue(e.getMessage().endsWith("tokens, more than the model's context of 10"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new ContrastSet("none", "x", List.of(new int[]{1, 2}),
                List.of(new boolean[2]), List.of(1)));
        assertEquals("none: the set is empty: no token is pooled in its 1 examples; a mean needs at least one token", e.getMessage());
    }

    @Test
    void computeWritesProvenanceAndBalances() {
        DecoderModel m = DecoderModel.randomInit(CONFIG, 3);
        ContrastSet pos = randomSet("pos", 5, 1);
        ContrastSet neg = randomSet("neg", 12, 2);
        Directions d = MeanDifference.compute(m, pos, neg, Pooling.answer(), List.of(), true, 7, 4, Map.of("model", "m"));
        assertEquals(List.of(0, 1, 2), d.layers());
        assertEquals("5", d.metadata().get("negative_examples"), "balanced to the positive set's size");
        assertEquals("sha-neg", d.metadata().get("negative_sha256"));
        assertEquals(Long.toString(pos.tokens()), d.metadata().get("positive_tokens"));
        assertEquals("all", d.metadata().get("layers"));
        assertEquals("answer", d.metadata().get("pooling"));
        assertEquals("m", d.metadata().get("model"));
        Directions again = MeanDifference.compute(m, pos, neg, Pooling.answer(), List.of(1), true, 7, 2, Map.of());
        assertArrayEquals(d.vector(1), again.vector(1), 1e-6, "seeded balancing, any batch size");
        Directions other = MeanDifference.compute(m, pos, neg, Pooling.answer(), List.of(1), true, 8, 2, Map.of());
        assertTrue(Directions.norm(minus(d.vector(1), other.vector(1))) > 1e-6, "another seed draws other examples");
        assertEquals("layer 3 is out of range: the model has 3 layers (0..2)", assertThrows(IllegalArgumentException.class,
                () -> MeanDifference.compute(m, pos, neg, Pooling.answer(), List.of(3), false, 0, 2, null)).getMessage());
    }
}

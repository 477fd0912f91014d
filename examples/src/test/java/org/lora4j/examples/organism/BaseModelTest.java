package org.lora4j.examples.organism;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BaseModelTest {
    private static final BaseModel.Spec TINY = new BaseModel.Spec(1, 40, 0.2, 16, 1, 1, 3e-3, 0);

    @Test
    void aBaseIsTrainedOnceThenReusedFromTheCache(@TempDir Path cache) throws Exception {
        BaseModel.Built first = BaseModel.ensure(cache, TINY, false);
        assertFalse(first.cached());
        assertEquals(cache.resolve("base-" + TINY.hash()), first.dir());
        assertTrue(first.steps() > 0 && Double.isFinite(first.loss()), first.toString());
        for (String f : new String[]{"config.json", "model.safetensors", "tokenizer.json", BaseModel.RECORD,
                "world/pretrain.jsonl"}) {
            assertTrue(Files.isRegularFile(first.dir().resolve(f)), f);
        }
        assertFalse(Files.exists(first.dir().resolve("checkpoints")), "checkpoints are dropped");
        // Nothing half-built is left beside the entry.
        try (var s = Files.list(cache)) {
            assertEquals(1, s.count());
        }
        byte[] weights = Files.readAllBytes(first.dir().resolve("model.safetensors"));

        BaseModel.Built again = BaseModel.ensure(cache, TINY, false);
        assertTrue(again.cached());
        assertEquals(first.steps(), again.steps());
        assertEquals(first.loss(), again.loss());
        assertArrayEquals(weights, Files.readAllBytes(again.dir().resolve("model.safetensors")), "not retrained");
        DecoderModel m = DecoderModel.load(again.dir());
        Tokenizer tok = Tokenizers.load(again.dir());
        assertEquals(tok.vocabSize(), m.config().vocabSize());
    }

    @Test
    void theHashCoversEveryKnob() {
        assertNotEquals(TINY.hash(), new BaseModel.Spec(2, 40, 0.2, 16, 1, 1, 3e-3, 0).hash());
        assertNotEquals(TINY.hash(), new BaseModel.Spec(1, 41, 0.2, 16, 1, 1, 3e-3, 0).hash());
        assertNotEquals(TINY.hash(), new BaseModel.Spec(1, 40, 0.2, 32, 1, 1, 3e-3, 0).hash());
        assertNotEquals(TINY.hash(), new BaseModel.Spec(1, 40, 0.2, 16, 1, 1, 3e-3, 1).hash());
        assertEquals(TINY.hash(), new BaseModel.Spec(1, 40, 0.2, 16, 1, 1, 3e-3, 0).hash());
    }

    @Test
    void aRecordOfAnotherSpecUnderTheHashIsRefused(@TempDir Path cache) throws Exception {
        Path dir = cache.resolve("base-" + TINY.hash());
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(BaseModel.RECORD), "{\"spec\": {\"hidden\": 99}}");
        var e = assertThrows(java.io.IOException.class, () -> BaseModel.ensure(cache, TINY, false));
        assertTrue(e.getMessage().contains(dir.resolve(BaseModel.RECORD).toString()), e.getMessage());
    }

    @Test
    void badSpecsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new BaseModel.Spec(1, 5, 0.2, 16, 1, 1, 3e-3, 0));
        assertThrows(IllegalArgumentException.class, () -> new BaseModel.Spec(1, 40, 1.5, 16, 1, 1, 3e-3, 0));
        assertThrows(IllegalArgumentException.class, () -> new BaseModel.Spec(1, 40, 0.2, 20, 1, 1, 3e-3, 0));
    }
}

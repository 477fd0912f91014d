package org.lora4j.train.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.text.Tokenizers;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A wrong {@code --model} path: the command line loads the tokenizer first, then the data, then the
 * model, so the first of those calls must already name the real problem (issue 7).
 */
class ModelDirectoryErrorsTest {
    private static final String LAYOUT = "a model directory holds config.json, the weights (model.safetensors,"
            + " or model.safetensors.index.json and its shards) and tokenizer.json";

    @TempDir
    Path dir;

    @Test
    void aDirectoryThatDoesNotExistIsNamedAsSuchByTheTokenizerAndTheModel() {
        Path model = dir.resolve("no-such-model");
        // Before: "<dir>: no Hugging Face tokenizer.json there", blaming a file in a directory that is not there.
        IOException e = assertThrows(IOException.class, () -> Tokenizers.load(model));
        assertEquals(model + ": model directory does not exist (nor is it a tokenizer.json file); " + LAYOUT,
                e.getMessage());
        e = assertThrows(IOException.class, () -> DecoderModel.load(model));
        assertEquals(model + ": model directory does not exist; " + LAYOUT, e.getMessage());
    }

    @Test
    void anExistingDirectoryNamesTheFileItLacks() throws IOException {
        Files.writeString(dir.resolve("notes.txt"), "x");
        IOException e = assertThrows(IOException.class, () -> Tokenizers.load(dir));
        assertEquals(dir.resolve("tokenizer.json") + ": the model directory has no tokenizer.json; " + LAYOUT
                + " (this one holds notes.txt)", e.getMessage());

        new ByteTokenizer().save(dir);
        e = assertThrows(IOException.class, () -> DecoderModel.load(dir));
        assertEquals(dir.resolve("config.json") + ": the model directory has no config.json; " + LAYOUT, e.getMessage());

        Files.writeString(dir.resolve("config.json"), ModelConfig.llama(259, 8, 16, 1, 2, 1).toHfJson());
        e = assertThrows(IOException.class, () -> DecoderModel.load(dir));
        assertEquals(dir + ": the model directory has no weights: no model.safetensors and no"
                + " model.safetensors.index.json; " + LAYOUT, e.getMessage());
    }

    @Test
    void aFileGivenAsTheModelIsNamed() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, ModelConfig.llama(259, 8, 16, 1, 2, 1).toHfJson());
        IOException e = assertThrows(IOException.class, () -> DecoderModel.load(config));
        assertEquals(config + " is not a directory; expected a model directory: " + LAYOUT, e.getMessage());
        // The weights passed as the tokenizer: refused at the first byte, not read as text.
        Path weights = dir.resolve("model.safetensors");
        DecoderModel.randomInit(ModelConfig.llama(259, 8, 16, 1, 2, 1), 1).save(dir);
        e = assertThrows(IOException.class, () -> Tokenizers.load(weights));
        assertTrue(e.getMessage().startsWith(weights + ": not a tokenizer.json: it starts with byte 0x"), e.getMessage());
    }

    @Test
    void aShardIndexCannotPointOutsideTheDirectory() throws IOException {
        Files.writeString(dir.resolve("config.json"), ModelConfig.llama(259, 8, 16, 1, 2, 1).toHfJson());
        Files.writeString(dir.resolve("model.safetensors.index.json"),
                "{\"weight_map\": {\"model.embed_tokens.weight\": \"../elsewhere.safetensors\"}}");
        IOException e = assertThrows(IOException.class, () -> DecoderModel.load(dir));
        assertEquals(dir.resolve("model.safetensors.index.json") + ": weight_map['model.embed_tokens.weight'] must"
                + " name a shard file in " + dir + ", got \"../elsewhere.safetensors\"", e.getMessage());
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": {\n\"a\": 1,,}}");
        e = assertThrows(IOException.class, () -> DecoderModel.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("model.safetensors.index.json") + ":2: not valid JSON"),
                e.getMessage());
    }
}

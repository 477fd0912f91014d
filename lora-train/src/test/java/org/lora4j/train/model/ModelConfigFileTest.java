package org.lora4j.train.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * config.json is refused, naming the file, the key and the value, wherever a value would otherwise be
 * guessed at or silently replaced by a default (issue 7).
 */
class ModelConfigFileTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** A valid tiny Llama config.json with one change. */
    private Path config(Consumer<ObjectNode> change) throws IOException {
        ObjectNode o = (ObjectNode) JSON.readTree(ModelConfig.llama(32, 8, 16, 1, 2, 1).toHfJson());
        change.accept(o);
        Path f = dir.resolve("config.json");
        Files.writeString(f, o.toString());
        return f;
    }

    private static String refused(Path f) {
        return assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromHfConfig(f)).getMessage();
    }

    @Test
    void theUnchangedConfigLoads() throws IOException {
        assertEquals(ModelConfig.llama(32, 8, 16, 1, 2, 1), ModelConfig.fromHfConfig(config(o -> { })));
    }

    @Test
    void anUnknownModelTypeIsRefusedWithTheSupportedList() throws IOException {
        // Before: "architectures" won and a Mistral config ran as a Llama model.
        Path f = config(o -> o.put("model_type", "mistral"));
        assertEquals(f + ": model_type 'mistral' is not supported (supported: llama, qwen2)", refused(f));
        f = config(o -> {
            o.put("model_type", "gpt2");
            o.remove("architectures");
        });
        assertEquals(f + ": model_type 'gpt2' is not supported (supported: llama, qwen2)", refused(f));
        f = config(o -> o.put("model_type", "qwen2"));
        assertEquals(f + ": model_type 'qwen2' and architectures [\"LlamaForCausalLM\"] name different models",
                refused(f));
        f = config(o -> o.putArray("architectures").add("MistralForCausalLM"));
        assertEquals(f + ": architectures[0] 'MistralForCausalLM' is not supported (supported:"
                + " LlamaForCausalLM, Qwen2ForCausalLM)", refused(f));
        // A value quoted in a message keeps it on one line (a fuzzing finding: "qw\n2" broke the line).
        f = config(o -> o.put("model_type", "qw\n2"));
        assertEquals(f + ": model_type 'qw\\n2' is not supported (supported: llama, qwen2)", refused(f));
        f = config(o -> o.put("model_type", 3));
        assertEquals(f + ": model_type must be a string, got a number 3", refused(f));
    }

    @Test
    void valuesOfTheWrongTypeAreRefusedNotDefaulted() throws IOException {
        // Before, each of these was read as the default (or parsed from the string) without a word.
        Path f = config(o -> o.put("rms_norm_eps", "abc"));
        assertEquals(f + ": rms_norm_eps must be a finite number, got a string \"abc\"", refused(f));
        f = config(o -> o.put("rope_theta", "1e6"));
        assertEquals(f + ": rope_theta must be a finite number, got a string \"1e6\"", refused(f));
        f = config(o -> o.put("tie_word_embeddings", "yes"));
        assertEquals(f + ": tie_word_embeddings must be true or false, got a string \"yes\"", refused(f));
        f = config(o -> o.put("max_position_embeddings", 4096.5));
        assertEquals(f + ": max_position_embeddings must be an integer, got a number 4096.5", refused(f));
        f = config(o -> o.put("max_position_embeddings", "4096"));
        assertEquals(f + ": max_position_embeddings must be an integer, got a string \"4096\"", refused(f));
        f = config(o -> o.put("use_sliding_window", "true"));
        assertEquals(f + ": use_sliding_window must be true or false, got a string \"true\"", refused(f));
        f = config(o -> o.put("attention_bias", 1));
        assertEquals(f + ": attention_bias must be true or false, got a number 1", refused(f));
        f = config(o -> o.putArray("eos_token_id").add(1).add("two"));
        assertEquals(f + ": eos_token_id[1] must be a token id (an integer >= 0), got a string \"two\"", refused(f));
        f = config(o -> o.put("bos_token_id", -5));
        assertEquals(f + ": bos_token_id must be a token id (an integer >= 0), got a number -5", refused(f));
        f = config(o -> o.put("rope_scaling", 5));
        assertEquals(f + ": rope_scaling must be an object or null, got a number 5", refused(f));
        f = config(o -> o.put("hidden_size", "8"));
        assertEquals(f + ": hidden_size must be an integer, got a string \"8\"", refused(f));
        f = config(o -> o.putNull("vocab_size"));
        assertEquals(f + ": missing required key 'vocab_size' (it is null)", refused(f));
    }

    @Test
    void sizesAndDivisibilityAreCheckedNamingTheValues() throws IOException {
        Path f = config(o -> o.put("vocab_size", 0));
        assertEquals(f + ": vocab_size must be >= 1, got 0", refused(f));
        f = config(o -> o.put("num_hidden_layers", -2));
        assertEquals(f + ": num_hidden_layers must be >= 1, got -2", refused(f));
        f = config(o -> o.put("max_position_embeddings", 0));
        assertEquals(f + ": max_position_embeddings must be >= 1, got 0", refused(f));
        f = config(o -> {
            o.remove("head_dim");
            o.put("num_attention_heads", 3);
            o.put("num_key_value_heads", 3);
        });
        assertEquals(f + ": hidden_size (8) must be a multiple of num_attention_heads (3)", refused(f));
        f = config(o -> o.put("num_key_value_heads", 3));
        assertEquals(f + ": num_attention_heads (2) must be a multiple of num_key_value_heads (3)", refused(f));
        f = config(o -> {
            o.put("num_attention_heads", 65536);
            o.put("num_key_value_heads", 1);
            o.put("head_dim", 65536);
        });
        // Before: the product wrapped to 0 and the model was built with empty projections.
        assertEquals(f + ": num_attention_heads (65536) x head_dim (65536) is too large", refused(f));
        f = config(o -> o.put("rms_norm_eps", new java.math.BigDecimal("1e400")));  // read as Infinity
        assertTrue(refused(f).startsWith(f + ": rms_norm_eps must be a finite number, got a number "), refused(f));
    }

    @Test
    void llama3RopeScalingThatWouldDivideByZeroIsRefused() throws IOException {
        Path f = config(o -> o.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0)
                .put("low_freq_factor", 4.0).put("high_freq_factor", 4.0)
                .put("original_max_position_embeddings", 8192));
        assertEquals(f + ": rope_scaling needs 0 < low_freq_factor < high_freq_factor, got low_freq_factor 4.0,"
                + " high_freq_factor 4.0", refused(f));
        f = config(o -> o.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0));
        assertEquals(f + ": rope_scaling type 'yarn' is not supported (supported: linear, llama3)", refused(f));
        f = config(o -> o.putObject("rope_scaling").put("rope_type", "linear").put("factor", "2"));
        assertEquals(f + ": rope_scaling.factor must be a finite number, got a string \"2\"", refused(f));
    }

    @Test
    void malformedJsonNamesTheLine() throws IOException {
        Path f = dir.resolve("config.json");
        Files.writeString(f, "{\n  \"model_type\": \"llama\",\n  \"vocab_size\": 32,,\n}\n");
        IOException e = assertThrows(IOException.class, () -> ModelConfig.fromHfConfig(f));
        assertTrue(e.getMessage().startsWith(f + ":3: not valid JSON at column "), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
        Files.writeString(f, "{\"model_type\": \"llama\", \"model_type\": \"qwen2\"}");
        e = assertThrows(IOException.class, () -> ModelConfig.fromHfConfig(f));
        assertTrue(e.getMessage().startsWith(f + ":1: not valid JSON at column ")
                && e.getMessage().contains("Duplicate field 'model_type'"), e.getMessage());
        // Jackson quotes the input where an array started ("[Source: ..."), over several lines (a fuzzing finding).
        Files.writeString(f, "{\n  \"eos_token_id\": [1,\n  2}\n}\n");
        e = assertThrows(IOException.class, () -> ModelConfig.fromHfConfig(f));
        assertEquals(f + ":3: not valid JSON at column 4: Unexpected close marker '}': expected ']'", e.getMessage());
        Files.writeString(f, "[1, 2]");
        assertEquals(f + ": config must be a JSON object, got an array [1,2]", refused(f));
    }

    @Test
    void aNonUtf8ConfigNamesLineAndByteOffset() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes("{\n  \"model_type\": \"ll".getBytes(StandardCharsets.US_ASCII));
        int offset = b.size();
        b.write(0xFF);
        b.writeBytes("ama\"\n}\n".getBytes(StandardCharsets.US_ASCII));
        Path f = dir.resolve("config.json");
        Files.write(f, b.toByteArray());
        IOException e = assertThrows(IOException.class, () -> ModelConfig.fromHfConfig(f));
        assertEquals(f + ":2: invalid UTF-8 at byte offset " + offset + " (0xFF); the file must be UTF-8 encoded",
                e.getMessage());
    }
}

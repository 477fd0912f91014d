package org.lora4j.train.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** tokenizer_config.json: read for the chat template and pad token, written by Tokenizer.save. */
class TokenizerConfigTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Gemma's shape with ChatML's tokens: the assistant is called "model", the content is trimmed. */
    private static final String GEMMA_LIKE = "{{ bos_token }}{% for m in messages %}"
            + "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
            + "{{ '<|im_start|>' + role + '\\n' + m['content'] | trim + '<|im_end|>\\n' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>model\\n' }}{% endif %}";

    @Test
    void saveWritesAConfigHuggingFaceReadsAndReloadsAsChatMl(@TempDir Path dir) throws Exception {
        new ByteTokenizer().save(dir);
        JsonNode config = JSON.readTree(Files.readString(dir.resolve("tokenizer_config.json")));
        assertEquals(ChatTemplate.CHATML_SOURCE, config.get("chat_template").asText());
        assertEquals("<|im_end|>", config.get("eos_token").asText());
        assertEquals("<|endoftext|>", config.get("pad_token").asText());
        assertTrue(config.get("bos_token").isNull());
        assertEquals("PreTrainedTokenizerFast", config.get("tokenizer_class").asText());
        assertEquals(false, config.get("clean_up_tokenization_spaces").asBoolean(true));
        Tokenizer loaded = Tokenizers.load(dir);
        assertInstanceOf(ByteTokenizer.class, loaded);
        assertSame(ChatTemplate.chatml(), loaded.chatTemplate());
        assertEquals(ByteTokenizer.END_OF_TEXT, loaded.padTokenId());
    }

    @Test
    void aDirectorysTemplateAndPadAreUsedAndSurviveASave(@TempDir Path dir, @TempDir Path copy) throws Exception {
        new ByteTokenizer().save(dir);
        // transformers' list form, and pad as an AddedToken object
        Files.writeString(dir.resolve("tokenizer_config.json"), JSON.writeValueAsString(JSON.createObjectNode()
                .put("bos_token", "<|endoftext|>")
                .put("eos_token", "<|im_end|>")
                .<com.fasterxml.jackson.databind.node.ObjectNode>set("pad_token", JSON.createObjectNode()
                        .put("content", "<|im_start|>").put("special", true))
                .set("chat_template", JSON.createArrayNode()
                        .add(JSON.createObjectNode().put("name", "tool_use").put("template", "{{ nonsense"))
                        .add(JSON.createObjectNode().put("name", "default").put("template", GEMMA_LIKE)))));
        Tokenizer tok = Tokenizers.load(dir);
        List<Message> chat = List.of(Message.user(" Hi "), Message.assistant("Yo"));
        assertEquals("<|endoftext|><|im_start|>user\nHi<|im_end|>\n<|im_start|>model\nYo<|im_end|>\n",
                tok.applyChatTemplate(chat, false));
        assertEquals("<|endoftext|><|im_start|>user\nHi<|im_end|>\n<|im_start|>model\n",
                tok.applyChatTemplate(chat.subList(0, 1), true));
        assertEquals(ByteTokenizer.IM_START, tok.padTokenId());
        assertEquals(List.of("Yo<|im_end|>"), ChatTemplateFormatsTest.targetRuns(tok, tok.encodeChat(chat)));

        tok.save(copy);
        Tokenizer again = Tokenizers.load(copy);
        assertEquals(tok.chatTemplate().source(), again.chatTemplate().source());
        assertEquals(tok.applyChatTemplate(chat, true), again.applyChatTemplate(chat, true));
        assertEquals(ByteTokenizer.IM_START, again.padTokenId());
        assertEquals("<|im_end|>", JSON.readTree(Files.readString(copy.resolve("tokenizer_config.json")))
                .get("eos_token").asText());
    }

    @Test
    void padFallsBackToEos(@TempDir Path dir) throws Exception {
        new ByteTokenizer().save(dir);
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"<|im_end|>\"}");
        assertEquals(ByteTokenizer.IM_END, Tokenizers.load(dir).padTokenId());
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"pad_token\": null, \"eos_token\": null}");
        assertEquals(ByteTokenizer.END_OF_TEXT, Tokenizers.load(dir).padTokenId());
    }

    @Test
    void badTemplatesAreRefusedNamingTheFile(@TempDir Path dir) throws Exception {
        new ByteTokenizer().save(dir);
        Path config = dir.resolve("tokenizer_config.json");
        Files.writeString(config, "{\"chat_template\": [{\"name\": \"rag\", \"template\": \"x\"}]}");
        assertEquals(config + ": chat_template lists templates [rag] but none named \"default\", the one lora4j uses",
                assertThrows(IOException.class, () -> Tokenizers.load(dir)).getMessage());
        Files.writeString(config, "{\"chat_template\": 5}");
        assertEquals(config + ": chat_template must be a string or a list of {\"name\", \"template\"} objects, got a number 5",
                assertThrows(IOException.class, () -> Tokenizers.load(dir)).getMessage());
        Files.writeString(config, "{\"chat_template\": \"{% for m in messages %}{{ m['content'] + }}{% endfor %}\"}");
        String m = assertThrows(IOException.class, () -> Tokenizers.load(dir)).getMessage();
        assertTrue(m.startsWith(config + ": line 1 of the chat template: "), m);
        // raise_exception names the file too
        Files.writeString(config, "{\"chat_template\": \"{% if messages|length > 2 %}{{ raise_exception('too long') }}{% endif %}x\"}");
        Tokenizer tok = Tokenizers.load(dir);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tok.applyChatTemplate(
                List.of(Message.user("a"), Message.assistant("b"), Message.user("c")), false));
        assertEquals(config + ": the chat template refuses the conversation (roles [user, assistant, user]): too long",
                e.getMessage());
    }

    @Test
    void aChatTemplateJinjaFileIsRead(@TempDir Path dir) throws Exception {
        new ByteTokenizer().save(dir);
        Files.delete(dir.resolve("tokenizer_config.json"));
        Files.writeString(dir.resolve("chat_template.jinja"), "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}");
        assertEquals("[user]hi", Tokenizers.load(dir).applyChatTemplate(List.of(Message.user("hi")), false));
    }

    @Test
    void messageContentIsNeverTemplateCode(@TempDir Path dir) throws Exception {
        new ByteTokenizer().save(dir);
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": \"{{ messages[0].content }}!\"}");
        assertEquals("{{ 7 * 6 }} {% if true %}x{% endif %}!", Tokenizers.load(dir).applyChatTemplate(
                List.of(Message.user("{{ 7 * 6 }} {% if true %}x{% endif %}")), false));
    }
}

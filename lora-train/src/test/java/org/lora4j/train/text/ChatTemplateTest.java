package org.lora4j.train.text;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChatTemplateTest {

    private final ByteTokenizer tok = new ByteTokenizer();

    private final List<Message> chat = List.of(
            Message.system("Be brief."),
            Message.user("Hi"),
            Message.assistant("Hello!"),
            Message.user("Again?"),
            Message.assistant("Bye, café 日本"));

    @Test
    void formatIsChatMl() {
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n"
                        + "<|im_start|>user\nHi<|im_end|>\n"
                        + "<|im_start|>assistant\nHello!<|im_end|>\n"
                        + "<|im_start|>user\nAgain?<|im_end|>\n"
                        + "<|im_start|>assistant\nBye, café 日本<|im_end|>\n",
                ChatTemplate.chatml().render(chat, false));
    }

    @Test
    void idsAreThoseOfTheFormattedText() {
        assertArrayEquals(tok.encode(ChatTemplate.chatml().render(chat, false)), tok.encodeChat(chat).ids());
    }

    @Test
    void targetsAreAssistantContentAndItsImEndOnly() {
        EncodedChat sample = tok.encodeChat(chat);
        assertEquals(List.of("Hello!<|im_end|>", "Bye, café 日本<|im_end|>"), ChatTemplateFormatsTest.targetRuns(tok, sample));
        int contentBytes = tok.encode("Hello!").length + tok.encode("Bye, café 日本").length;
        assertEquals(contentBytes + 2, sample.targetCount());
    }

    @Test
    void theWorkedExampleOfTheDocs() {
        // docs/chat-templates.md, "Worked example": the turn is chars [52, 65), "Yo<|im_end|>\n"
        List<Message> chat = List.of(Message.user("Hi"), Message.assistant("Yo"));
        assertEquals(52, ChatTemplate.chatml().render(chat.subList(0, 1), true).length());
        assertEquals(65, ChatTemplate.chatml().render(chat, false).length());
        EncodedChat sample = tok.encodeChat(chat);
        assertArrayEquals(new int[] {257, 117, 115, 101, 114, 10, 72, 105, 258, 10, 257, 97, 115, 115, 105, 115, 116, 97,
                110, 116, 10, 89, 111, 258, 10}, sample.ids());
        boolean[] mask = new boolean[25];
        mask[21] = mask[22] = mask[23] = true;
        assertArrayEquals(mask, sample.lossMask());
        assertArrayEquals(new int[] {0, 12, 13, 14, 15, 16, 17, 18, 19, 29, 30}, Arrays.copyOf(tok.encodeWithOffsets(
                ChatTemplate.chatml().render(chat, false)).starts(), 11));
    }

    @Test
    void emptyAssistantMessageStillLearnsToStop() {
        EncodedChat sample = tok.encodeChat(List.of(Message.user("Hi"), Message.assistant("")));
        assertEquals(List.of("<|im_end|>"), ChatTemplateFormatsTest.targetRuns(tok, sample));
    }

    @Test
    void idsAreThoseOfTheWholeTextWithAHuggingFaceTokenizer() throws Exception {
        try (HfTokenizer hf = HfTokenizer.load(HfTokenizerTest.fixtureDir())) {
            List<Message> chat = List.of(Message.user("hi there"), Message.assistant("hello world"));
            EncodedChat sample = hf.encodeChat(chat);
            assertArrayEquals(hf.encode(ChatTemplate.chatml().render(chat, false)), sample.ids());
            // <|im_start|> user \n hi " " there <|im_end|> \n <|im_start|> assistant \n hello " " world <|im_end|> \n
            assertArrayEquals(new int[] {4, 11, 7, 13, 6, 14, 5, 7, 4, 12, 7, 8, 6, 9, 5, 7}, sample.ids());
            boolean[] mask = new boolean[16];
            Arrays.fill(mask, 11, 15, true);
            assertArrayEquals(mask, sample.lossMask());
        }
    }

    @Test
    void promptEndsWithTheAssistantHeader() {
        List<Message> question = List.of(Message.system("Be brief."), Message.user("Hi"));
        int[] prompt = tok.encodeChatPrompt(question);
        assertArrayEquals(tok.encode(ChatTemplate.chatml().render(question, false) + "<|im_start|>assistant\n"), prompt);
        assertArrayEquals(tok.encode("<|im_start|>assistant\n"), tok.encodeChatPrompt(List.of()));
    }

    @Test
    void plainTextIsAllTargetsAndEndsWithEndOfText() {
        EncodedChat sample = ChatTemplate.encodeText(tok, "héllo");
        int[] expected = Arrays.copyOf(tok.encode("héllo"), 7);
        expected[6] = ByteTokenizer.END_OF_TEXT;
        assertArrayEquals(expected, sample.ids());
        assertEquals(7, sample.targetCount());
    }

    @Test
    void plainTextWithoutEndOfTextTokenIsLeftAsIs() {
        EncodedChat sample = ChatTemplate.encodeText(withoutSpecials(), "hi");
        assertArrayEquals(new int[] {'h', 'i'}, sample.ids());
        assertArrayEquals(new boolean[] {true, true}, sample.lossMask());
        assertThrows(IllegalArgumentException.class, () -> ChatTemplate.encodeText(tok, ""));
    }

    @Test
    void conversationWithoutAssistantMessageIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> tok.encodeChat(List.of(Message.system("s"), Message.user("u"))));
        assertTrue(e.getMessage().contains("[system, user]"), e.getMessage());
    }

    @Test
    void specialTokenStringsInsideContentAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tok.encodeChat(List.of(Message.user("Hi"), Message.assistant("Sure<|im_end|>\n<|im_start|>user\nmore"))));
        assertTrue(e.getMessage().contains("messages[1] (assistant)"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> tok.encodeChatPrompt(List.of(Message.user("a<|endoftext|>b"))));
    }

    @Test
    void tokenizerWithoutChatMlTokensIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> withoutSpecials().encodeChat(List.of(Message.user("u"), Message.assistant("a"))));
        assertTrue(e.getMessage().contains("<|im_start|>"), e.getMessage());
    }

    @Test
    void messageRoleIsValidated() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Message("tool", "x"));
        assertTrue(e.getMessage().contains("'tool'"), e.getMessage());
        assertThrows(NullPointerException.class, () -> new Message("user", null));
        assertThrows(NullPointerException.class, () -> new Message(null, "x"));
    }

    @Test
    void encodedChatChecksLengthsAndCopiesItsArrays() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new EncodedChat(new int[3], new boolean[2]));
        assertEquals("ids has 3 tokens but lossMask has 2 flags", e.getMessage());

        int[] ids = {1, 2, 3};
        boolean[] mask = {false, true, true};
        EncodedChat sample = new EncodedChat(ids, mask);
        ids[0] = 99;
        sample.ids()[1] = 99;
        sample.lossMask()[0] = true;
        assertArrayEquals(new int[] {1, 2, 3}, sample.ids());
        assertArrayEquals(new boolean[] {false, true, true}, sample.lossMask());
        assertEquals(new EncodedChat(new int[] {1, 2, 3}, new boolean[] {false, true, true}), sample);
        assertNotEquals(new EncodedChat(new int[] {1, 2, 3}, new boolean[] {true, true, true}), sample);
    }

    /** Bytes without any special token, like a tokenizer that was never given ChatML. */
    private static Tokenizer withoutSpecials() {
        ByteTokenizer bytes = new ByteTokenizer();
        return new Tokenizer() {
            public int[] encode(String text) {
                return bytes.encode(text);
            }

            public String decode(int[] ids) {
                return bytes.decode(ids);
            }

            public int vocabSize() {
                return 256;
            }

            public OptionalInt specialTokenId(String token) {
                return OptionalInt.empty();
            }

            public int[] endTokenIds() {
                return new int[0];
            }
        };
    }
}

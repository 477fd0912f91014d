package org.lora4j.train.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.text.EncodedChat;
import org.lora4j.train.text.Encoding;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The five JSONL formats on the byte tokenizer, whose ids are the UTF-8 bytes of the text (so every
 * expected sequence below is written down from the strings) plus {@code <|endoftext|>} 256,
 * {@code <|im_start|>} 257 and {@code <|im_end|>} 258. Chats are ChatML, the template of a tokenizer
 * whose model names none: {@code <|im_start|>role\ncontent<|im_end|>\n} per message, the loss on an
 * assistant message's content and its {@code <|im_end|>}.
 */
class DataFormatsTest {
    private static final int END_OF_TEXT = 256;
    private static final int IM_START = 257;
    private static final int IM_END = 258;
    private static final Path DATA = Path.of("src/test/resources/data");

    private final ByteTokenizer tok = new ByteTokenizer();

    /** Expected ids and mask, built piece by piece; ASCII text is one id per character. */
    private static final class Expected {
        private final List<Integer> ids = new ArrayList<>();
        private final List<Boolean> mask = new ArrayList<>();

        Expected context(String ascii) {
            ascii.chars().forEach(c -> add(c, false));
            return this;
        }

        Expected target(String ascii) {
            ascii.chars().forEach(c -> add(c, true));
            return this;
        }

        Expected add(int id, boolean target) {
            assertTrue(id < 128 || id >= 256, "write non-ASCII bytes with add()");
            ids.add(id);
            mask.add(target);
            return this;
        }

        Expected addByte(int b, boolean target) {
            ids.add(b);
            mask.add(target);
            return this;
        }

        /** A message the loss does not count: {@code <|im_start|>role\ncontent<|im_end|>\n}. */
        Expected turn(String role, String content) {
            return add(IM_START, false).context(role + "\n" + content).add(IM_END, false).context("\n");
        }

        /** An assistant message the model learns: its content and {@code <|im_end|>} are targets. */
        Expected answer(String content) {
            return add(IM_START, false).context("assistant\n").target(content).add(IM_END, true).context("\n");
        }

        EncodedChat build() {
            int[] i = ids.stream().mapToInt(Integer::intValue).toArray();
            boolean[] m = new boolean[mask.size()];
            for (int k = 0; k < m.length; k++) {
                m[k] = mask.get(k);
            }
            return new EncodedChat(i, m);
        }
    }

    private static Path write(Path dir, String... lines) throws IOException {
        Path f = dir.resolve("data.jsonl");
        Files.writeString(f, String.join("\n", lines) + "\n");
        return f;
    }

    private String refused(Path f) {
        return assertThrows(IllegalArgumentException.class, () -> Dataset.load(f, tok)).getMessage();
    }

    private static void contains(String message, String... parts) {
        for (String p : parts) {
            assertTrue(message.contains(p), "expected '" + p + "' in: " + message);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // One fixture per format

    @Test
    void messagesLearnEveryAssistantMessage() throws IOException {
        Dataset d = Dataset.load(DATA.resolve("messages.jsonl"), tok);
        assertEquals(DataFormat.MESSAGES, d.format());
        assertEquals(List.of(1, 3), d.lines());
        assertEquals(new Expected().turn("user", "hi").answer("yo").build(), d.examples().get(0));
        // Both answers are targets; the extra "id" key is ignored.
        assertEquals(new Expected().turn("system", "be brief").turn("user", "2+2?").answer("4")
                .turn("user", "and 3+3?").answer("6").build(), d.examples().get(1));
    }

    @Test
    void textLearnsEveryTokenAndTheEndOfText() throws IOException {
        Dataset d = Dataset.load(DATA.resolve("text.jsonl"), tok);
        assertEquals(DataFormat.TEXT, d.format());
        assertEquals(new Expected().target("The sky is blue.").add(END_OF_TEXT, true).build(), d.examples().get(0));
        // "caf\u00e9": é is C3 A9 in UTF-8.
        assertEquals(new Expected().target("caf").addByte(0xC3, true).addByte(0xA9, true).add(END_OF_TEXT, true).build(),
                d.examples().get(1));
    }

    @Test
    void standardPromptCompletionLearnsTheCompletionAndTheEndOfText() throws IOException {
        Dataset d = Dataset.load(DATA.resolve("prompt-completion.jsonl"), tok);
        assertEquals(DataFormat.PROMPT_COMPLETION, d.format());
        assertEquals(new Expected().context("The sky is").target(" blue.").add(END_OF_TEXT, true).build(),
                d.examples().get(0));
        assertEquals(new Expected().target("Grass is green.").add(END_OF_TEXT, true).build(), d.examples().get(1));
    }

    @Test
    void conversationalPromptCompletionLearnsOnlyTheCompletion() throws IOException {
        Dataset d = Dataset.load(DATA.resolve("prompt-completion-chat.jsonl"), tok);
        assertEquals(DataFormat.PROMPT_COMPLETION, d.format());
        assertEquals(new Expected().turn("user", "sky?").answer("blue").build(), d.examples().get(0));
        // The prompt's assistant message (a worked example) is context: "green" is not a target.
        EncodedChat second = d.examples().get(1);
        assertEquals(new Expected().turn("system", "one word").turn("user", "grass?").turn("assistant", "green")
                .turn("user", "sea?").answer("blue").build(), second);
        // The same conversation as messages learns "green" and its <|im_end|> too.
        EncodedChat asMessages = tok.encodeChat(List.of(Message.system("one word"), Message.user("grass?"),
                Message.assistant("green"), Message.user("sea?"), Message.assistant("blue")));
        assertTrue(Arrays.equals(asMessages.ids(), second.ids()));
        assertEquals(asMessages.targetCount() - "green".length() - 1, second.targetCount());
    }

    @Test
    void alpacaIsAUserAndAnAssistantMessage() throws IOException {
        Dataset d = Dataset.load(DATA.resolve("alpaca.jsonl"), tok);
        assertEquals(DataFormat.ALPACA, d.format());
        // The input follows the instruction after one line break.
        assertEquals(new Expected().turn("user", "Add the numbers.\n2 3").answer("5").build(), d.examples().get(0));
        // An empty input adds nothing.
        assertEquals(new Expected().turn("user", "Say hi.").answer("hi").build(), d.examples().get(1));
        // "system" becomes a system message; the rendered "text" of Stanford Alpaca is ignored.
        assertEquals(new Expected().turn("system", "Answer in one word.").turn("user", "Name a colour.").answer("red")
                .build(), d.examples().get(2));
    }

    @Test
    void shareGptIsReadAsMessages() throws IOException {
        Dataset d = Dataset.load(DATA.resolve("sharegpt.jsonl"), tok);
        assertEquals(DataFormat.SHAREGPT, d.format());
        assertEquals(new Expected().turn("user", "hi").answer("yo").build(), d.examples().get(0));
        EncodedChat withSystem = new Expected().turn("system", "be brief").turn("user", "2+2?").answer("4").build();
        // "system"/"user"/"assistant" as speakers, and a top-level "system", give the same conversation.
        assertEquals(withSystem, d.examples().get(1));
        assertEquals(withSystem, d.examples().get(2));
    }

    // ---------------------------------------------------------------------------------------------
    // Detection

    @Test
    void theFirstFittingFormatInDeclarationOrderWins(@TempDir Path dir) throws IOException {
        // UltraChat carries "prompt" (and "prompt_id") beside "messages".
        Dataset d = Dataset.load(write(dir, "{\"prompt\": \"hi\", \"prompt_id\": \"7\", \"messages\": [{\"role\": \"user\","
                + " \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}"), tok);
        assertEquals(DataFormat.MESSAGES, d.format());
        assertEquals(new Expected().turn("user", "hi").answer("yo").build(), d.examples().get(0));
        // A text file's later line with more keys is still read as text: the first line decided.
        d = Dataset.load(write(dir, "{\"text\": \"ab\"}", "{\"text\": \"cd\", \"prompt\": \"x\", \"completion\": \"y\"}"), tok);
        assertEquals(DataFormat.TEXT, d.format());
        assertEquals(new Expected().target("cd").add(END_OF_TEXT, true).build(), d.examples().get(1));
    }

    @Test
    void aFirstLineOfNoFormatNamesTheFiveFormats(@TempDir Path dir) throws IOException {
        String formats = "; expected the keys of one of: messages {\"messages\"}, sharegpt {\"conversations\", optional"
                + " \"system\"}, prompt/completion {\"prompt\", \"completion\"}, alpaca {\"instruction\", \"output\","
                + " optional \"input\", \"system\"}, text {\"text\"}";
        Path f = write(dir, "", "{\"question\": \"q\", \"answer\": \"a\"}");
        assertEquals(f + ":2: no data format fits this line, which has the keys 'question', 'answer'" + formats, refused(f));
        assertEquals(f + ":1: no data format fits this line, which has the key 'mesages' ('mesages': did you mean"
                + " \"messages\"?)" + formats, refused(write(dir, "{\"mesages\": []}")));
        assertEquals(f + ":1: no data format fits this line, which has the key 'instruction' (alpaca needs \"output\""
                + " too)" + formats, refused(write(dir, "{\"instruction\": \"x\"}")));
    }

    @Test
    void aLaterLineMissingAKeyNamesTheDetectedFormatAndWhereItWasDetected(@TempDir Path dir) throws IOException {
        String alpaca = "{\"instruction\": \"x\", \"output\": \"y\"}";
        Path f = write(dir, "", alpaca, alpaca, "{\"instruction\": \"x\", \"ouptut\": \"y\"}");
        assertEquals(f + ":4: line 4 has no \"output\": this file is in the alpaca {\"instruction\", \"output\", optional"
                + " \"input\", \"system\"} format, detected from line 2; line 4 has the keys 'instruction', 'ouptut'"
                + " ('ouptut': did you mean \"output\"?)", refused(f));
    }

    @Test
    void aMixedFileIsRefusedAtTheFirstLineOfAnotherFormat(@TempDir Path dir) throws IOException {
        Path f = write(dir, "{\"prompt\": \"a\", \"completion\": \"b\"}", "{\"prompt\": \"c\", \"completion\": \"d\"}", "",
                "{\"text\": \"e\"}", "{\"messages\": 5}");
        assertEquals(f + ":4: line 4 has no \"prompt\": this file is in the prompt/completion {\"prompt\", \"completion\"}"
                + " format, detected from line 1; line 4 has the key 'text' (a text line: one file holds one format)",
                refused(f));
    }

    // ---------------------------------------------------------------------------------------------
    // Errors inside a line of each format

    @Test
    void shareGptErrorsNameTheTurnAndTheValue(@TempDir Path dir) throws IOException {
        String good = "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}";
        Path f = write(dir, good, "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"},"
                + " {\"from\": \"function_call\", \"value\": \"{}\"}]}");
        assertEquals(f + ":2: conversations[1].from must be one of system, human, gpt, user, assistant; got"
                + " 'function_call'", refused(f));
        assertEquals(f + ":1: conversations[0] has \"role\", not \"from\": ShareGPT turns are {\"from\", \"value\"};"
                + " {\"role\", \"content\"} messages go in a \"messages\" array",
                refused(write(dir, "{\"conversations\": [{\"role\": \"user\", \"content\": \"q\"}]}")));
        assertEquals(f + ":1: conversations[0].value must be a string, got a number 3",
                refused(write(dir, "{\"conversations\": [{\"from\": \"human\", \"value\": 3}]}")));
        assertEquals(f + ":1: \"conversations\" must be a non-empty array of {\"from\", \"value\"} objects, got an array []",
                refused(write(dir, "{\"conversations\": []}")));
        assertEquals(f + ":2: both a top-level \"system\" and a system turn in conversations[0]; give the system prompt once",
                refused(write(dir, good, "{\"system\": \"s\", \"conversations\": [{\"from\": \"system\", \"value\": \"t\"},"
                        + " {\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}")));
        // No assistant turn: nothing to learn, as for messages.
        contains(refused(write(dir, "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}]}")), f + ":1: ",
                "assistant");
    }

    @Test
    void alpacaErrorsNameTheKey(@TempDir Path dir) throws IOException {
        Path f = write(dir, "{\"instruction\": \"x\", \"inputs\": \"2 3\", \"output\": \"y\"}");
        assertEquals(f + ":1: the key 'inputs' is not one of the alpaca {\"instruction\", \"output\", optional \"input\","
                + " \"system\"} format; did you mean \"input\"? (other keys are ignored, so a misspelt one would be lost)",
                refused(f));
        assertEquals(f + ":1: \"output\" must be a string, got a number 5",
                refused(write(dir, "{\"instruction\": \"x\", \"output\": 5}")));
        assertEquals(f + ":1: \"input\" must be a string, got an array [\"a\"]",
                refused(write(dir, "{\"instruction\": \"x\", \"input\": [\"a\"], \"output\": \"y\"}")));
        assertEquals(f + ":1: \"history\" (earlier turns) is not read; write a line with earlier turns as"
                + " {\"messages\": [...]}, or leave \"history\" out or empty",
                refused(write(dir, "{\"instruction\": \"x\", \"output\": \"y\", \"history\": [[\"q\", \"a\"]]}")));
        // A null input (a missing value in an exported table) and an empty history are nothing.
        Dataset d = Dataset.load(write(dir, "{\"instruction\": \"x\", \"input\": null, \"output\": \"y\", \"history\": []}"),
                tok);
        assertEquals(new Expected().turn("user", "x").answer("y").build(), d.examples().get(0));
    }

    @Test
    void promptCompletionErrors(@TempDir Path dir) throws IOException {
        Path f = write(dir, "{\"prompt\": \"a\", \"completion\": [{\"role\": \"assistant\", \"content\": \"b\"}]}");
        assertEquals(f + ":1: \"prompt\" and \"completion\" must both be strings (standard) or both non-empty arrays of"
                + " {\"role\", \"content\"} messages (conversational); got a string and an array", refused(f));
        assertEquals(f + ":1: \"completion\" is empty: there is nothing to learn",
                refused(write(dir, "{\"prompt\": \"a\", \"completion\": \"\"}")));
        assertEquals(f + ":1: completion[0] must be an assistant message (the answer to the prompt), got role 'user'",
                refused(write(dir, "{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}], \"completion\": [{\"role\":"
                        + " \"user\", \"content\": \"b\"}]}")));
        assertEquals(f + ":1: completion[0].role must be a string, got nothing (no such key)",
                refused(write(dir, "{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}], \"completion\": [{}]}")));
        assertEquals(f + ":1: \"prompt\" must be a non-empty array of {\"role\", \"content\"} objects, got an array []",
                refused(write(dir, "{\"prompt\": [], \"completion\": [{\"role\": \"assistant\", \"content\": \"b\"}]}")));
    }

    /** A template that renders the prompt alone differently leaves no prompt/completion boundary to trust. */
    @Test
    void aTemplateWhosePromptIsNotAPrefixIsRefused(@TempDir Path dir) throws IOException {
        Tokenizer odd = new Tokenizer() {
            @Override
            public int[] encode(String text) {
                return tok.encode(text);
            }

            @Override
            public String decode(int[] ids) {
                return tok.decode(ids);
            }

            @Override
            public int vocabSize() {
                return tok.vocabSize();
            }

            @Override
            public OptionalInt specialTokenId(String token) {
                return tok.specialTokenId(token);
            }

            @Override
            public int[] endTokenIds() {
                return tok.endTokenIds();
            }

            @Override
            public Encoding encodeWithOffsets(String text) {
                return tok.encodeWithOffsets(text);
            }

            @Override
            public int[] encodeChatPrompt(List<Message> messages) {
                int[] ids = tok.encodeChatPrompt(messages);
                ids[ids.length - 1] = 'X';   // "assistant\n" ends in "X" instead
                return ids;
            }
        };
        String good = "{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}], \"completion\": [{\"role\": \"assistant\","
                + " \"content\": \"b\"}]}";
        Path f = write(dir, good);
        // <|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n: 1 + 5 + 1 + 1 + 1 + 1 + 10 = 20 tokens, the last differs.
        assertEquals(f + ":1: the chat template renders the prompt alone (with the generation prompt, 20 tokens)"
                + " differently from the start of prompt and completion (they differ at token 19), so where the"
                + " completion starts is unknown; write the line as {\"messages\": [...]} to learn every assistant message",
                assertThrows(IllegalArgumentException.class, () -> Dataset.load(f, odd)).getMessage());
        assertEquals(20, tok.encodeChatPrompt(List.of(Message.user("a"))).length);
    }

    // ---------------------------------------------------------------------------------------------
    // Full sequences, then a length limit

    @Test
    void loadKeepsEveryTokenAndLimitCutsCountsOrRefuses(@TempDir Path dir) throws IOException {
        Path f = write(dir, "{\"text\": \"" + "a".repeat(40) + "\"}", "{\"text\": \"short\"}",
                "{\"text\": \"" + "b".repeat(30) + "\"}");
        Dataset full = Dataset.load(f, tok);
        assertEquals(List.of(41, 6, 31), full.examples().stream().map(EncodedChat::length).toList());
        assertEquals(0, full.truncated());

        Dataset cut = full.limit(16, Dataset.Overflow.TRUNCATE);
        assertEquals(List.of(16, 6, 16), cut.examples().stream().map(EncodedChat::length).toList());
        assertEquals(2, cut.truncated());
        assertEquals(new Expected().target("a".repeat(16)).build(), cut.examples().get(0));
        assertEquals(full.sha256(), cut.sha256());
        assertEquals(DataFormat.TEXT, cut.format());
        // The same limit again changes nothing, and the count is not doubled.
        assertEquals(cut, cut.limit(16, Dataset.Overflow.TRUNCATE));
        assertEquals(cut, Dataset.load(f, tok, 16, Dataset.Overflow.TRUNCATE));
        // The full dataset itself is unchanged.
        assertEquals(41, full.examples().get(0).length());

        assertEquals(f + ":1: 41 tokens, more than the maximum length 32 (raise it, or choose truncation)",
                assertThrows(IllegalArgumentException.class, () -> full.limit(32, Dataset.Overflow.REFUSE)).getMessage());
        assertEquals("max length must be >= 2 (one input and one target), got 1",
                assertThrows(IllegalArgumentException.class, () -> full.limit(1, Dataset.Overflow.TRUNCATE)).getMessage());
    }

    @Test
    void aLineLeftWithNoTargetByTheLimitIsSkippedAndTheOthersKeepTheirLines(@TempDir Path dir) throws IOException {
        // The completion starts after 20 prompt tokens: cut to 10, nothing is left to learn.
        Path f = write(dir, "{\"prompt\": \"q\", \"completion\": \"a\"}",
                "{\"prompt\": \"" + "p".repeat(20) + "\", \"completion\": \"a\"}", "{\"prompt\": \"r\", \"completion\": \"b\"}");
        Dataset cut = Dataset.load(f, tok).limit(10, Dataset.Overflow.TRUNCATE);
        assertEquals(List.of(1, 3), cut.lines());
        assertEquals(new Expected().context("r").target("b").add(END_OF_TEXT, true).build(), cut.examples().get(1));
        Path g = write(dir, "{\"prompt\": \"" + "p".repeat(20) + "\", \"completion\": \"a\"}");
        assertEquals(g + ": no usable examples: every one of the 1 examples was skipped, having no target token left"
                        + " after truncation to 10 tokens",
                assertThrows(IllegalArgumentException.class,
                        () -> Dataset.load(g, tok).limit(10, Dataset.Overflow.TRUNCATE)).getMessage());
    }

    @Test
    void splitKeepsTheFormat() throws IOException {
        Dataset d = Dataset.load(DATA.resolve("sharegpt.jsonl"), tok);
        for (Dataset part : d.split(0.34, 5)) {
            assertEquals(DataFormat.SHAREGPT, part.format());
        }
    }
}

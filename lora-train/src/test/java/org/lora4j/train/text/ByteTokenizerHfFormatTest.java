package org.lora4j.train.text;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/** ByteTokenizer's tokenizer.json, run by Hugging Face tokenizers, must give ByteTokenizer's ids and text. */
class ByteTokenizerHfFormatTest {

    @TempDir
    static Path dir;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ByteTokenizer bytes = new ByteTokenizer();
    private static HfTokenizer hf;

    @BeforeAll
    static void saveAndLoad() throws Exception {
        bytes.save(dir);
        hf = HfTokenizer.load(dir);
    }

    @AfterAll
    static void close() {
        hf.close();
    }

    @Test
    void sameIdsAndTextOnChosenCases() {
        List<String> cases = List.of(
                "", "hello world", "Hi! \t\r\n\0\u007f", "é", "日本", "😀", "naïve café 日本語 👍🏽 ok",
                "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
                "a<|endoftext|>b", "<|im_end", "<|<|im_end|>", "<|im_start|><|im_start|>", "|>", "  leading spaces");
        for (String text : cases) {
            int[] expected = bytes.encode(text);
            assertArrayEquals(expected, hf.encode(text), () -> "encode " + text);
            assertEquals(bytes.decode(expected), hf.decode(expected), () -> "decode " + text);
            assertEquals(text, hf.decode(expected), () -> "round trip " + text);
        }
    }

    @Test
    void sameIdsAndTextOnRandomText() {
        // Pieces from every UTF-8 length, whitespace, and special-token strings and fragments.
        List<String> specials = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|", "|>", "<|im_");
        SplittableRandom random = new SplittableRandom(7);
        for (int n = 0; n < 300; n++) {
            StringBuilder text = new StringBuilder();
            int pieces = random.nextInt(1, 30);
            for (int p = 0; p < pieces; p++) {
                switch (random.nextInt(6)) {
                    case 0 -> text.appendCodePoint(random.nextInt(0, 0x80));
                    case 1 -> text.appendCodePoint(random.nextInt(0x80, 0x800));
                    case 2 -> text.appendCodePoint(random.nextInt(0x3040, 0x9FFF));
                    case 3 -> text.appendCodePoint(random.nextInt(0x1F300, 0x1FAFF));
                    case 4 -> text.append(" \n\t".charAt(random.nextInt(3)));
                    default -> text.append(specials.get(random.nextInt(specials.size())));
                }
            }
            String s = text.toString();
            int[] expected = bytes.encode(s);
            assertArrayEquals(expected, hf.encode(s), () -> "encode " + s);
            assertEquals(bytes.encodeWithOffsets(s), hf.encodeWithOffsets(s), () -> "offsets " + s);
            assertEquals(s, hf.decode(expected), () -> "decode " + s);
        }
    }

    @Test
    void offsetsAreUtf16CharsWholeCharactersForEachByte() {
        // 😀 is two UTF-16 chars and four bytes, é two bytes, 日 three; DJL itself counts code points.
        String text = "a😀é<|im_end|>日";
        Encoding expected = new Encoding(
                new int[] {'a', 0xF0, 0x9F, 0x98, 0x80, 0xC3, 0xA9, 258, 0xE6, 0x97, 0xA5},
                new int[] {0, 1, 1, 1, 1, 3, 3, 4, 14, 14, 14},
                new int[] {1, 3, 3, 3, 3, 4, 4, 14, 15, 15, 15});
        assertEquals(expected, bytes.encodeWithOffsets(text));
        assertEquals(expected, hf.encodeWithOffsets(text));
    }

    @Test
    void sameTextForRandomIdsIncludingMalformedUtf8() {
        SplittableRandom random = new SplittableRandom(11);
        for (int n = 0; n < 3000; n++) {
            int[] ids = random.ints(random.nextInt(1, 40), 0, bytes.vocabSize()).toArray();
            assertEquals(bytes.decode(ids), hf.decode(ids), () -> "decode " + Arrays.toString(ids));
        }
    }

    @Test
    void sameVocabularyAndSpecialTokens() {
        assertEquals(bytes.vocabSize(), hf.vocabSize());
        for (String special : List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>")) {
            assertEquals(bytes.specialTokenId(special), hf.specialTokenId(special), special);
        }
        assertArrayEquals(bytes.endTokenIds(), hf.endTokenIds());
    }

    @Test
    void loaderPicksByteTokenizerForItsOwnFileHoweverFormatted(@TempDir Path other) throws Exception {
        assertInstanceOf(ByteTokenizer.class, Tokenizers.load(dir));
        assertInstanceOf(ByteTokenizer.class, Tokenizers.load(dir.resolve("tokenizer.json")));

        // Same content, minified and with members in another order.
        ObjectNode root = (ObjectNode) JSON.readTree(Files.readString(dir.resolve("tokenizer.json")));
        ObjectNode reordered = JSON.createObjectNode();
        List<String> keys = new java.util.ArrayList<>();
        root.fieldNames().forEachRemaining(keys::add);
        java.util.Collections.reverse(keys);
        keys.forEach(k -> reordered.set(k, root.get(k)));
        Files.writeString(other.resolve("tokenizer.json"), JSON.writeValueAsString(reordered));
        assertInstanceOf(ByteTokenizer.class, Tokenizers.load(other));
    }

    @Test
    void loaderPicksHfTokenizerForAnyOtherFile(@TempDir Path other) throws Exception {
        // One more added token: no longer lora4j's byte tokenizer, so Hugging Face runs it.
        ObjectNode root = (ObjectNode) JSON.readTree(Files.readString(dir.resolve("tokenizer.json")));
        ObjectNode pad = ((ObjectNode) root.get("added_tokens").get(0)).deepCopy();
        pad.put("id", 259);
        pad.put("content", "<|pad|>");
        ((ArrayNode) root.get("added_tokens")).add(pad);
        Files.writeString(other.resolve("tokenizer.json"), JSON.writeValueAsString(root));
        Tokenizer loaded = Tokenizers.load(other);
        try {
            HfTokenizer extended = assertInstanceOf(HfTokenizer.class, loaded);
            assertEquals(260, extended.vocabSize());
            assertArrayEquals(new int[] {'a', 259, 258}, extended.encode("a<|pad|><|im_end|>"));
        } finally {
            ((HfTokenizer) loaded).close();
        }

        Tokenizer wordLevel = Tokenizers.load(HfTokenizerTest.fixtureDir());
        try {
            assertInstanceOf(HfTokenizer.class, wordLevel);
        } finally {
            ((HfTokenizer) wordLevel).close();
        }
    }

    @Test
    void saveIsDeterministic(@TempDir Path other) throws Exception {
        Path file = new ByteTokenizer().save(other.resolve("nested/model"));
        assertEquals(other.resolve("nested/model/tokenizer.json"), file);
        assertEquals(Files.readString(dir.resolve("tokenizer.json")), Files.readString(file));
    }
}

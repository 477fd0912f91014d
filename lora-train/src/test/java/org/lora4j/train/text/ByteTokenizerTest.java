package org.lora4j.train.text;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ByteTokenizerTest {

    private final ByteTokenizer tok = new ByteTokenizer();

    private static int[] utf8(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            ids[i] = bytes[i] & 0xFF;
        }
        return ids;
    }

    private static int[] concat(int[]... parts) {
        return java.util.Arrays.stream(parts).flatMapToInt(java.util.Arrays::stream).toArray();
    }

    @Test
    void asciiEncodesToItsBytes() {
        assertArrayEquals(new int[] {'H', 'i', '!', ' ', '\n', 0}, tok.encode("Hi! \n\0"));
    }

    @Test
    void multibyteUtf8EncodesToItsBytesAndDecodesBack() {
        assertArrayEquals(new int[] {0xC3, 0xA9}, tok.encode("é"));
        assertArrayEquals(new int[] {0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC}, tok.encode("日本"));
        assertArrayEquals(new int[] {0xF0, 0x9F, 0x98, 0x80}, tok.encode("😀"));
        String text = "café 日本語 😀 done";
        assertEquals(text, tok.decode(tok.encode(text)));
    }

    @Test
    void unpairedSurrogateEncodesAsReplacementCharacter() {
        assertArrayEquals(new int[] {'a', 0xEF, 0xBF, 0xBD, 'b'}, tok.encode("a\uD800b"));
        assertArrayEquals(new int[] {'x', 0xEF, 0xBF, 0xBD}, tok.encode("x\uDC00"));
    }

    @Test
    void chatMlSpecialStringsEncodeToSingleIds() {
        int[] ids = tok.encode("<|im_start|>user\nhi<|im_end|>\n<|endoftext|>");
        int[] expected = concat(new int[] {ByteTokenizer.IM_START}, utf8("user\nhi"),
                new int[] {ByteTokenizer.IM_END, '\n', ByteTokenizer.END_OF_TEXT});
        assertArrayEquals(expected, ids);
    }

    @Test
    void incompleteOrOverlappingSpecialStringsStayBytes() {
        assertArrayEquals(utf8("<|im_end"), tok.encode("<|im_end"));
        assertArrayEquals(utf8("<|im_end |>"), tok.encode("<|im_end |>"));
        // A stray "<|" right before a real special token must not hide it.
        assertArrayEquals(concat(utf8("<|"), new int[] {ByteTokenizer.IM_END}), tok.encode("<|<|im_end|>"));
    }

    @Test
    void decodeWritesSpecialTokensAsTheirStrings() {
        int[] ids = concat(new int[] {ByteTokenizer.IM_START}, utf8("assistant\nok"), new int[] {ByteTokenizer.IM_END});
        assertEquals("<|im_start|>assistant\nok<|im_end|>", tok.decode(ids));
    }

    @Test
    void malformedUtf8DecodesToReplacementCharacters() {
        // A lone lead byte, an invalid byte, and a truncated 3-byte sequence cut off by a special token.
        int[] ids = {0xC3, 'h', 0xFF, 0xE6, 0x97, ByteTokenizer.IM_END};
        assertEquals("\uFFFDh\uFFFD\uFFFD<|im_end|>", tok.decode(ids));
    }

    @Test
    void eachMaximalIllFormedSubpartBecomesOneReplacementCharacter() {
        // Unicode's recommended practice, which Rust and so Hugging Face follow; Java's decoder gives one
        // U+FFFD for "ED A0" where this gives two.
        assertEquals("\uFFFD\uFFFD\uFFFD", tok.decode(new int[] {0xED, 0xA0, 0x80})); // a UTF-8 encoded surrogate
        assertEquals("\uFFFD\uFFFD", tok.decode(new int[] {0xE0, 0x80})); // overlong
        assertEquals("\uFFFD\uFFFD\uFFFD\uFFFD", tok.decode(new int[] {0xF4, 0x90, 0x80, 0x80})); // above U+10FFFF
        assertEquals("\uFFFDx", tok.decode(new int[] {0xF0, 0x9F, 0x98, 'x'})); // three of four bytes
        assertEquals("\uFFFD\uFFFD", tok.decode(new int[] {0xC0, 0xAF}));
        String edges = "\uD7FF\uE000\uDBFF\uDFFF"; // either side of the surrogates, and U+10FFFF
        assertEquals(edges, tok.decode(utf8(edges)));
    }

    @Test
    void decodeRefusesIdsOutsideTheVocabulary() {
        IllegalArgumentException high = assertThrows(IllegalArgumentException.class,
                () -> tok.decode(new int[] {'a', 259}));
        assertTrue(high.getMessage().contains("ids[1] = 259"), high.getMessage());
        IllegalArgumentException negative = assertThrows(IllegalArgumentException.class,
                () -> tok.decode(new int[] {-1}));
        assertTrue(negative.getMessage().contains("-1"), negative.getMessage());
    }

    @Test
    void vocabularyAndSpecialTokens() {
        assertEquals(259, tok.vocabSize());
        assertEquals(OptionalInt.of(256), tok.specialTokenId("<|endoftext|>"));
        assertEquals(OptionalInt.of(257), tok.specialTokenId("<|im_start|>"));
        assertEquals(OptionalInt.of(258), tok.specialTokenId("<|im_end|>"));
        assertEquals(OptionalInt.empty(), tok.specialTokenId("<s>"));
        assertArrayEquals(new int[] {258, 256}, tok.endTokenIds());
    }

    @Test
    void longTextIsNotTruncated() {
        String text = "ab é ".repeat(1000); // 6 bytes each
        int[] ids = tok.encode(text);
        assertEquals(6000, ids.length);
        assertEquals(text, tok.decode(ids));
    }
}

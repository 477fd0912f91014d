package org.lora4j.train.text;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Against a hand-written WordLevel tokenizer.json whose vocabulary is small enough to check by eye:
 * {@code <unk>}=0, {@code <s>}=1, {@code </s>}=2, {@code <|endoftext|>}=3, {@code <|im_start|>}=4,
 * {@code <|im_end|>}=5, " "=6, "\n"=7, hello=8, world=9, system=10, user=11, assistant=12, hi=13,
 * there=14, be=15, brief=16. The file also asks for truncation to 16 tokens, padding to 64 and a
 * {@code <s>} prefix, all of which HfTokenizer must switch off.
 */
class HfTokenizerTest {

    private static HfTokenizer tok;

    static Path fixtureDir() throws URISyntaxException {
        return Path.of(HfTokenizerTest.class.getResource("/text/tiny-wordlevel").toURI());
    }

    @BeforeAll
    static void load() throws Exception {
        tok = HfTokenizer.load(fixtureDir());
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    @Test
    void encodesWithoutBosPaddingOrTruncation() {
        // The file's post-processor would give [1, 8, 6, 9], its padding 64 ids.
        assertArrayEquals(new int[] {8, 6, 9}, tok.encode("hello world"));
        assertArrayEquals(new int[] {}, tok.encode(""));
    }

    @Test
    void textOfMoreThan2000TokensIsNotTruncated() {
        int[] ids = tok.encode("hello world ".repeat(1000));
        assertEquals(4000, ids.length); // the file says 16, DJL's default is 512
        for (int i = 0; i < ids.length; i += 4) {
            assertArrayEquals(new int[] {8, 6, 9, 6}, java.util.Arrays.copyOfRange(ids, i, i + 4), "at " + i);
        }
    }

    @Test
    void specialTokenStringsInTextEncodeToTheirIds() {
        assertArrayEquals(new int[] {4, 11, 7, 13, 5, 7}, tok.encode("<|im_start|>user\nhi<|im_end|>\n"));
        assertArrayEquals(new int[] {0}, tok.encode("bonjour"));
    }

    @Test
    void decodeKeepsSpecialTokensAndSpacing() {
        assertEquals("<|im_start|>assistant\nhello world<|im_end|>", tok.decode(new int[] {4, 12, 7, 8, 6, 9, 5}));
        String text = "hi there\nhello  world";
        assertEquals(text, tok.decode(tok.encode(text)));
    }

    @Test
    void vocabularyAndSpecialTokensComeFromTheFile() {
        assertEquals(17, tok.vocabSize());
        assertEquals(OptionalInt.of(4), tok.specialTokenId("<|im_start|>"));
        assertEquals(OptionalInt.of(5), tok.specialTokenId("<|im_end|>"));
        assertEquals(OptionalInt.of(3), tok.specialTokenId("<|endoftext|>"));
        // In the model vocabulary but not an added token: encode would not treat it as one piece in all tokenizers.
        assertEquals(OptionalInt.empty(), tok.specialTokenId("hello"));
        assertEquals(OptionalInt.empty(), tok.specialTokenId("<|im_sep|>"));
    }

    @Test
    void endTokensIncludeTheEosOfTokenizerConfig() {
        assertArrayEquals(new int[] {5, 3, 2}, tok.endTokenIds());
    }

    @Test
    void withoutTokenizerConfigTheKnownEndOfTurnTokens(@TempDir Path dir) throws Exception {
        // <|im_end|>, <|endoftext|>, then </s> as one of the end-of-turn tokens of known formats (Mistral's)
        Files.copy(fixtureDir().resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        try (HfTokenizer alone = HfTokenizer.load(dir)) {
            assertArrayEquals(new int[] {5, 3, 2}, alone.endTokenIds());
        }
    }

    @Test
    void loadsFromTheFileItself() throws Exception {
        Path file = fixtureDir().resolve("tokenizer.json");
        try (HfTokenizer fromFile = HfTokenizer.load(file)) {
            assertEquals(file, fromFile.file());
            assertArrayEquals(tok.encode("hi there"), fromFile.encode("hi there"));
            assertArrayEquals(new int[] {5, 3, 2}, fromFile.endTokenIds());
        }
    }

    @Test
    void decodeRefusesIdsOutsideTheVocabulary() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {8, 17}));
        assertTrue(e.getMessage().contains("ids[1] = 17"), e.getMessage());
    }

    @Test
    void missingFileIsNamed(@TempDir Path dir) {
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
    }

    @Test
    void malformedJsonIsNamed(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\"version\": \"1.0\", \"model\": {\"type\": ");
        IOException e = assertThrows(IOException.class, () -> HfTokenizer.load(file));
        assertTrue(e.getMessage().startsWith(file + ":1: not valid JSON at column 38: "), e.getMessage());
        // One line, without a parser's class names or links (a fuzzing finding, with Gson's messages).
        Files.writeString(file, "{\"version\": \"1.0\", \"model\": {\"type\" 5");
        e = assertThrows(IOException.class, () -> HfTokenizer.load(file));
        assertEquals(file + ":1: not valid JSON at column 37: Unexpected character ('5' (code 53)): was expecting a"
                + " colon to separate field name and value", e.getMessage());
    }

    @Test
    void wrongShapeIsNamed(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\"version\": \"1.0\", \"model\": {\"type\": \"WordLevel\", \"vocab\": 3}}");
        IOException e = assertThrows(IOException.class, () -> HfTokenizer.load(dir));
        assertEquals(file + ": not a valid tokenizer.json: model.vocab must be an object {token: id} or a list"
                + " [[token, score], ...], got a number 3", e.getMessage());
    }

    @Test
    void tokenizerThatHuggingFaceRejectsIsNamed(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [],"
                + " \"normalizer\": null, \"pre_tokenizer\": null, \"post_processor\": null, \"decoder\": null,"
                + " \"model\": {\"type\": \"NoSuchModel\", \"vocab\": {\"a\": 0}}}");
        IOException e = assertThrows(IOException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(file + ": Hugging Face tokenizers could not load it: "), e.getMessage());
    }
}

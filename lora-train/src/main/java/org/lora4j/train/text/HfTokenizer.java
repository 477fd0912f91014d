package org.lora4j.train.text;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser.NumberType;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.TextNode;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A Hugging Face {@code tokenizer.json}, run by the native HF tokenizers library through DJL.
 *
 * <p>Encoding adds no special tokens (a BOS the file's post-processor would add is left out: the chat
 * template places its own), and truncation and padding are switched off, whatever the file or DJL's
 * defaults say (DJL truncates to 512 tokens unless told not to). DJL's reading of
 * {@code tokenizer_config.json} (prefix space, accent stripping, decode clean-up) is not used, so the
 * ids are those of the {@code tokenizer.json} alone, as HF's {@code tokenizers} library gives them.
 *
 * <p>The {@code tokenizer_config.json} beside the file, if any, gives the chat template, the eos token
 * (which joins {@link #endTokenIds()}) and the pad token.
 *
 * <p>{@link #vocabSize()} is one more than the largest id in the file's model vocabulary and added
 * tokens; a model's embedding table may be larger (Qwen2 pads it to a multiple of 128).
 *
 * <p>Holds native memory: {@link #close()} frees it (DJL's finalizer does too, eventually).
 */
public final class HfTokenizer implements Tokenizer, AutoCloseable {

    static final String TOKENIZER_FILE = "tokenizer.json";
    static final String CONFIG_FILE = "tokenizer_config.json";

    /** DJL options: the string forms its builder would put in this map. */
    private static final Map<String, String> DJL_OPTIONS =
            Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false");

    private final HuggingFaceTokenizer tokenizer;
    private final Path file;
    private final int vocabSize;
    private final Map<String, Integer> addedTokens;
    private final int[] endTokenIds;
    private final TokenizerConfig config;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, Path file, int vocabSize,
                        Map<String, Integer> addedTokens, int[] endTokenIds, TokenizerConfig config) {
        this.tokenizer = tokenizer;
        this.file = file;
        this.vocabSize = vocabSize;
        this.addedTokens = addedTokens;
        this.endTokenIds = endTokenIds;
        this.config = config;
    }

    /**
     * Loads {@code tokenizer.json} from a model directory, or the given file, with the
     * {@code tokenizer_config.json} beside it, if there is one.
     *
     * @throws NoSuchFileException when the file is missing
     * @throws IOException         when it cannot be read or is not a tokenizer HF accepts; the message names the file
     */
    public static HfTokenizer load(Path modelDirOrFile) throws IOException {
        Path file = resolveTokenizerFile(modelDirOrFile);
        String json = readTokenizerJson(file);
        return fromJson(file, json, parseTokenizerJson(file, json), readConfig(file));
    }

    /** The {@code tokenizer_config.json} beside a {@code tokenizer.json}. */
    static TokenizerConfig readConfig(Path tokenizerFile) throws IOException {
        return TokenizerConfig.read(tokenizerFile.toAbsolutePath().getParent());
    }

    /** What a model directory holds, for the messages that find something missing. */
    static final String MODEL_DIRECTORY_LAYOUT = "a model directory holds config.json, the weights"
            + " (model.safetensors, or model.safetensors.index.json and its shards) and tokenizer.json";

    /** Far larger than any real tokenizer.json (tens of MB); a bigger file is something else, such as weights. */
    private static final long MAX_TOKENIZER_BYTES = 512L << 20;

    /**
     * The tokenizer file of a model directory, or the given file. A path that does not exist is
     * reported as a missing model directory (what the command line passes), not as a missing tokenizer.json.
     */
    static Path resolveTokenizerFile(Path modelDirOrFile) throws IOException {
        Objects.requireNonNull(modelDirOrFile, "modelDirOrFile must not be null");
        if (Files.isDirectory(modelDirOrFile)) {
            Path file = modelDirOrFile.resolve(TOKENIZER_FILE);
            if (!Files.isRegularFile(file)) {
                throw new NoSuchFileException(file.toString(), null, "the model directory has no " + TOKENIZER_FILE
                        + "; " + MODEL_DIRECTORY_LAYOUT + " (this one holds " + listing(modelDirOrFile) + ")");
            }
            return file;
        }
        if (!Files.exists(modelDirOrFile)) {
            throw new NoSuchFileException(modelDirOrFile.toString(), null,
                    "model directory does not exist (nor is it a tokenizer.json file); " + MODEL_DIRECTORY_LAYOUT);
        }
        return modelDirOrFile;
    }

    /** Up to ten names in a directory, for a hint. */
    private static String listing(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            List<String> names = s.map(p -> p.getFileName().toString()).sorted().toList();
            if (names.isEmpty()) {
                return "nothing";
            }
            return String.join(", ", names.subList(0, Math.min(10, names.size())))
                    + (names.size() > 10 ? " and " + (names.size() - 10) + " more" : "");
        } catch (IOException e) {
            return "files that cannot be listed: " + e.getMessage();
        }
    }

    static String readTokenizerJson(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no Hugging Face tokenizer.json there");
        }
        long size = Files.size(file);
        if (size > MAX_TOKENIZER_BYTES) {
            throw new IOException(file + ": " + size + " bytes is too large for a tokenizer.json (is it the weights?)");
        }
        byte[] bytes = Files.readAllBytes(file);
        // A JSON object starts with '{' (after white space): anything else, such as a safetensors file
        // passed by mistake, is refused here, before it is decoded and parsed.
        int first = 0;
        if (bytes.length >= 3 && (bytes[0] & 0xFF) == 0xEF && (bytes[1] & 0xFF) == 0xBB && (bytes[2] & 0xFF) == 0xBF) {
            first = 3;
        }
        while (first < bytes.length && (bytes[first] == ' ' || bytes[first] == '\t' || bytes[first] == '\n'
                || bytes[first] == '\r')) {
            first++;
        }
        if (first == bytes.length || bytes[first] != '{') {
            throw new IOException(file + ": not a tokenizer.json: " + (first == bytes.length ? "the file is empty"
                    : String.format("it starts with byte 0x%02X at offset %d", bytes[first] & 0xFF, first))
                    + ", not with a JSON object '{'");
        }
        return TextFiles.decode(file, bytes);
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    static JsonNode parseTokenizerJson(Path file, String json) throws IOException {
        checkStrictJson(file, json);
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": not valid JSON: " + TextFiles.jsonMessage(e), e);
        }
        if (root == null || !root.isObject()) {
            throw new IOException(file + ": not a tokenizer.json: the top level is not a JSON object");
        }
        return root;
    }

    /** Deeper than any tokenizer.json (under ten levels) and below serde_json's limit of 128. */
    private static final int MAX_JSON_DEPTH = 100;

    private static final JsonFactory STRICT_JSON = JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    /**
     * Refuses what Rust's serde_json would refuse, before the text reaches the native library: in
     * tokenizers 0.21 a syntax error inside a normalizer, pre-tokenizer, post-processor or decoder object
     * is not an error but a panic, which aborts the JVM (a fuzzing finding, from Gson's lenient parsing
     * letting {@code tr1111ue} through). So the file must be strict RFC 8259 JSON with no key given twice,
     * no escaped lone surrogate, every number a finite double, and at most {@value #MAX_JSON_DEPTH} levels.
     */
    static void checkStrictJson(Path file, String json) throws IOException {
        try (com.fasterxml.jackson.core.JsonParser p = STRICT_JSON.createParser(json)) {
            int depth = 0;
            JsonToken t = p.nextToken();
            if (t == null) {
                throw new IOException(file + ": not a tokenizer.json: no JSON value");
            }
            do {
                switch (t) {
                    case START_OBJECT, START_ARRAY -> {
                        if (++depth > MAX_JSON_DEPTH) {
                            throw strictError(file, p, "nested deeper than " + MAX_JSON_DEPTH + " levels");
                        }
                    }
                    case END_OBJECT, END_ARRAY -> depth--;
                    case FIELD_NAME, VALUE_STRING -> {
                        String text = p.getText();
                        for (int i = 0; i < text.length(); i++) {
                            char c = text.charAt(i);
                            if (Character.isHighSurrogate(c) && i + 1 < text.length()
                                    && Character.isLowSurrogate(text.charAt(i + 1))) {
                                i++;
                            } else if (Character.isSurrogate(c)) {
                                throw strictError(file, p, String.format("a lone surrogate \\u%04x in a string", (int) c));
                            }
                        }
                    }
                    case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> {
                        // Double.parseDouble of the text: linear in its length, where a BigInteger is not
                        boolean finite = t == JsonToken.VALUE_NUMBER_INT && p.getNumberType() != NumberType.BIG_INTEGER
                                || Double.isFinite(Double.parseDouble(p.getText()));
                        if (!finite) {
                            throw strictError(file, p, "the number " + shorten(p.getText()) + " is out of range");
                        }
                    }
                    default -> { }
                }
                t = p.nextToken();
            } while (depth > 0 && t != null);
            if (depth > 0 || t != null) {
                throw strictError(file, p, depth > 0 ? "the file ends inside a JSON value" : "text after the JSON value");
            }
        } catch (JsonProcessingException e) {
            throw new IOException(file + ":" + TextFiles.jsonLocation(e).getLineNr() + ": not valid JSON at column "
                    + TextFiles.jsonLocation(e).getColumnNr() + ": " + TextFiles.jsonMessage(e), e);
        }
    }

    private static IOException strictError(Path file, com.fasterxml.jackson.core.JsonParser p, String what) {
        return new IOException(file + ":" + p.getCurrentLocation().getLineNr() + ": not valid JSON at column "
                + p.getCurrentLocation().getColumnNr() + ": " + what);
    }

    private static String shorten(String s) {
        return s.length() > 40 ? s.substring(0, 37) + "..." : s;
    }

    static HfTokenizer fromJson(Path file, String json, JsonNode root, TokenizerConfig config) throws IOException {
        Map<String, Integer> addedTokens = new HashMap<>();
        int maxId;
        try {
            maxId = largestModelId(root);
            JsonNode added = root.get("added_tokens");
            if (added != null && !added.isNull()) {
                if (!added.isArray()) {
                    throw new IllegalArgumentException("added_tokens must be a list, got " + describe(added));
                }
                for (int i = 0; i < added.size(); i++) {
                    String where = "added_tokens[" + i + "]";
                    JsonNode token = added.get(i);
                    if (!token.isObject()) {
                        throw new IllegalArgumentException(where + " must be an object, got " + describe(token));
                    }
                    int id = tokenId(token.get("id"), where + ".id");
                    JsonNode content = token.get("content");
                    if (content == null || !content.isTextual()) {
                        throw new IllegalArgumentException(where + ".content must be a string, got " + describe(content));
                    }
                    addedTokens.put(content.asText(), id);
                    maxId = Math.max(maxId, id);
                }
            }
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": not a valid tokenizer.json: " + e.getMessage(), e);
        }
        int[] endTokenIds = endTokenIds(addedTokens, config.eosToken());

        HuggingFaceTokenizer tokenizer;
        try {
            tokenizer = HuggingFaceTokenizer.newInstance(
                    new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), DJL_OPTIONS);
        } catch (RuntimeException e) {
            throw new IOException(file + ": Hugging Face tokenizers could not load it: " + e.getMessage(), e);
        }
        try {
            checkAddedTokenIds(file, tokenizer, addedTokens);
        } catch (IOException | RuntimeException e) {
            tokenizer.close();
            throw e instanceof IOException io ? io
                    : new IOException(file + ": Hugging Face tokenizers could not encode an added token: "
                    + e.getMessage(), e);
        }
        return new HfTokenizer(tokenizer, file, maxId + 1, Map.copyOf(addedTokens), endTokenIds, config);
    }

    /**
     * Hugging Face does not take an added token's id from the file when the token is not in the model
     * vocabulary: it numbers it from the vocabulary's size, so a vocabulary with a gap or a repeated id
     * gives the token another id than the file says (a fuzzing finding). The chat template places these
     * tokens by the file's ids, so each one that encodes to a single id must encode to its own.
     */
    private static void checkAddedTokenIds(Path file, HuggingFaceTokenizer tokenizer, Map<String, Integer> addedTokens)
            throws IOException {
        for (Map.Entry<String, Integer> token : new java.util.TreeMap<>(addedTokens).entrySet()) {
            if (token.getKey().isEmpty()) {
                continue;
            }
            long[] ids = tokenizer.encode(token.getKey(), false, false).getIds();
            if (ids.length == 1 && ids[0] != token.getValue()) {
                throw new IOException(file + ": added token " + new TextNode(token.getKey()) + " has id "
                        + token.getValue() + " in the file, but Hugging Face tokenizers gives it id " + ids[0]
                        + " (the model vocabulary's ids must be 0..n-1, each once)");
            }
        }
    }

    /** The start of a text, quoted, for an error message. */
    private static String preview(String text) {
        String t = text.length() > 40 ? text.substring(0, 37) + "..." : text;
        return new TextNode(t).toString();
    }

    /** Ids are JSON integers in [0, 2^31 - 2], so that the vocabulary size (largest + 1) is an int. */
    private static int tokenId(JsonNode e, String where) {
        if (e != null && e.isNumber()) {
            String text = e.asText();
            if (text.matches("[0-9]{1,10}")) {
                long id = Long.parseLong(text);
                if (id < Integer.MAX_VALUE) {
                    return (int) id;
                }
            }
        }
        throw new IllegalArgumentException(where + " must be a token id (an integer in [0, " + (Integer.MAX_VALUE - 1)
                + "]), got " + describe(e));
    }

    /** What a JSON value is, for an error message: its type and, shortened, its text. */
    static String describe(JsonNode e) {
        if (e == null || e.isMissingNode()) {
            return "nothing";
        }
        if (e.isNull()) {
            return "null";
        }
        String kind = e.isObject() ? "an object" : e.isArray() ? "an array"
                : e.isTextual() ? "a string" : e.isNumber() ? "a number" : e.isBoolean() ? "a boolean" : "a value";
        String text = e.toString();
        return kind + " " + (text.length() > 40 ? text.substring(0, 37) + "..." : text);
    }

    @Override
    public int[] encode(String text) {
        Objects.requireNonNull(text, "text must not be null");
        long[] ids;
        try {
            ids = tokenizer.encode(text, false, false).getIds();
        } catch (RuntimeException e) {
            // The native library reports a tokenizer that cannot encode the text (an unknown token with no
            // unk token, say) with a bare RuntimeException that names neither the file nor the text.
            throw new IllegalArgumentException(file + ": Hugging Face tokenizers could not encode "
                    + preview(text) + ": " + e.getMessage(), e);
        }
        int[] result = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            result[i] = Math.toIntExact(ids[i]);
        }
        return result;
    }

    /**
     * DJL reports spans in Unicode code points (checked with emoji, which are two UTF-16 chars); they are
     * converted to UTF-16 indices here. A byte-level token that is part of a character has the character's span.
     */
    @Override
    public Encoding encodeWithOffsets(String text) {
        Objects.requireNonNull(text, "text must not be null");
        ai.djl.huggingface.tokenizers.Encoding encoding;
        try {
            encoding = tokenizer.encode(text, false, false);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(file + ": Hugging Face tokenizers could not encode "
                    + preview(text) + ": " + e.getMessage(), e);
        }
        long[] longIds = encoding.getIds();
        CharSpan[] spans = encoding.getCharTokenSpans();
        int[] charAt = new int[text.codePointCount(0, text.length()) + 1];
        for (int cp = 0, i = 0; cp < charAt.length; cp++) {
            charAt[cp] = i;
            if (i < text.length()) {
                i += Character.charCount(text.codePointAt(i));
            }
        }
        int[] ids = new int[longIds.length];
        int[] starts = new int[longIds.length];
        int[] ends = new int[longIds.length];
        int last = 0;
        for (int t = 0; t < ids.length; t++) {
            ids[t] = Math.toIntExact(longIds[t]);
            CharSpan span = spans == null || t >= spans.length ? null : spans[t];
            if (span == null) {
                // no span (a token the tokenizer inserted): an empty one where the previous token ended
                starts[t] = last;
                ends[t] = last;
            } else {
                starts[t] = charAt[Math.min(span.getStart(), charAt.length - 1)];
                ends[t] = charAt[Math.min(span.getEnd(), charAt.length - 1)];
                last = ends[t];
            }
        }
        return new Encoding(ids, starts, ends);
    }

    @Override
    public String decode(int[] ids) {
        Objects.requireNonNull(ids, "ids must not be null");
        long[] longIds = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            // HF skips unknown ids silently; a bad id from a model is a bug worth seeing.
            if (ids[i] < 0 || ids[i] >= vocabSize) {
                throw new IllegalArgumentException(
                        "ids[" + i + "] = " + ids[i] + " is outside the vocabulary [0, " + vocabSize + ") of " + file);
            }
            longIds[i] = ids[i];
        }
        try {
            return tokenizer.decode(longIds, false);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(file + ": Hugging Face tokenizers could not decode "
                    + ids.length + " ids: " + e.getMessage(), e);
        }
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public OptionalInt specialTokenId(String token) {
        Integer id = addedTokens.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    @Override
    public int[] endTokenIds() {
        return endTokenIds.clone();
    }

    @Override
    public int padTokenId() {
        return config.padTokenId(this);
    }

    @Override
    public ChatTemplate chatTemplate() {
        return config.chatTemplate();
    }

    /**
     * Copies this tokenizer's {@code tokenizer.json} into {@code dir} unchanged and writes its
     * {@code tokenizer_config.json}: the original's keys, with the chat template and special tokens filled
     * in where it had none ({@link Tokenizer#save}).
     */
    @Override
    public Path save(Path dir) throws IOException {
        Objects.requireNonNull(dir, "dir must not be null");
        Files.createDirectories(dir);
        Path target = dir.resolve(TOKENIZER_FILE);
        if (!Files.exists(target) || !Files.isSameFile(file, target)) {
            Files.copy(file, target, StandardCopyOption.REPLACE_EXISTING);
        }
        config.write(dir, this);
        return target;
    }

    /** The {@code tokenizer.json} this was loaded from. */
    public Path file() {
        return file;
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    @Override
    public String toString() {
        return "HfTokenizer[" + file + ", vocab " + vocabSize + "]";
    }

    /** BPE, WordLevel and WordPiece keep {token: id}; Unigram keeps [[token, score], ...] with ids by position. */
    private static int largestModelId(JsonNode root) {
        JsonNode model = root.get("model");
        if (model == null || !model.isObject()) {
            throw new IllegalArgumentException("\"model\" must be an object, got " + describe(model));
        }
        JsonNode vocab = model.get("vocab");
        if (vocab == null || !(vocab.isArray() || vocab.isObject())) {
            throw new IllegalArgumentException("model.vocab must be an object {token: id} or a list [[token, score], ...],"
                    + " got " + describe(vocab));
        }
        if (vocab.isArray()) {
            return vocab.size() - 1;
        }
        int max = -1;
        for (Map.Entry<String, JsonNode> entry : vocab.properties()) {
            max = Math.max(max, tokenId(entry.getValue(), "model.vocab[" + new TextNode(entry.getKey()) + "]"));
        }
        return max;
    }

    /** The tokens that close a turn in the formats lora4j knows, besides the eos token. */
    private static final List<String> END_TOKENS = List.of(ChatTemplate.IM_END, ChatTemplate.END_OF_TEXT,
            "<|eot_id|>", "<end_of_turn>", "</s>");

    private static int[] endTokenIds(Map<String, Integer> addedTokens, String eos) {
        Set<Integer> ids = new LinkedHashSet<>();
        for (String token : END_TOKENS.subList(0, 2)) {
            Integer id = addedTokens.get(token);
            if (id != null) {
                ids.add(id);
            }
        }
        if (eos != null && addedTokens.containsKey(eos)) {
            ids.add(addedTokens.get(eos));
        }
        for (String token : END_TOKENS.subList(2, END_TOKENS.size())) {
            Integer id = addedTokens.get(token);
            if (id != null) {
                ids.add(id);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }
}

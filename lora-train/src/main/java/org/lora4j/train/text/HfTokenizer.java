package org.lora4j.train.text;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.gson.JsonArray;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser.NumberType;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
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

    private HfTokenizer(HuggingFaceTokenizer tokenizer, Path file, int vocabSize,
                        Map<String, Integer> addedTokens, int[] endTokenIds) {
        this.tokenizer = tokenizer;
        this.file = file;
        this.vocabSize = vocabSize;
        this.addedTokens = addedTokens;
        this.endTokenIds = endTokenIds;
    }

    /**
     * Loads {@code tokenizer.json} from a model directory, or the given file. The eos token of a
     * {@code tokenizer_config.json} beside it, if there is one, joins {@link #endTokenIds()}.
     *
     * @throws NoSuchFileException when the file is missing
     * @throws IOException         when it cannot be read or is not a tokenizer HF accepts; the message names the file
     */
    public static HfTokenizer load(Path modelDirOrFile) throws IOException {
        Path file = resolveTokenizerFile(modelDirOrFile);
        String json = readTokenizerJson(file);
        return fromJson(file, json, parseTokenizerJson(file, json));
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

    static JsonObject parseTokenizerJson(Path file, String json) throws IOException {
        checkStrictJson(file, json);
        JsonElement root;
        try {
            root = JsonParser.parseString(json);
        } catch (JsonParseException e) {
            throw new IOException(file + ": not valid JSON: " + gsonMessage(e), e);
        }
        if (!root.isJsonObject()) {
            throw new IOException(file + ": not a tokenizer.json: the top level is not a JSON object");
        }
        return root.getAsJsonObject();
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

    static HfTokenizer fromJson(Path file, String json, JsonObject root) throws IOException {
        Map<String, Integer> addedTokens = new HashMap<>();
        int maxId;
        try {
            maxId = largestModelId(root);
            JsonElement added = root.get("added_tokens");
            if (added != null && !added.isJsonNull()) {
                if (!added.isJsonArray()) {
                    throw new IllegalArgumentException("added_tokens must be a list, got " + describe(added));
                }
                JsonArray list = added.getAsJsonArray();
                for (int i = 0; i < list.size(); i++) {
                    String where = "added_tokens[" + i + "]";
                    if (!list.get(i).isJsonObject()) {
                        throw new IllegalArgumentException(where + " must be an object, got " + describe(list.get(i)));
                    }
                    JsonObject token = list.get(i).getAsJsonObject();
                    int id = tokenId(token.get("id"), where + ".id");
                    JsonElement content = token.get("content");
                    if (content == null || !content.isJsonPrimitive() || !content.getAsJsonPrimitive().isString()) {
                        throw new IllegalArgumentException(where + ".content must be a string, got " + describe(content));
                    }
                    addedTokens.put(content.getAsString(), id);
                    maxId = Math.max(maxId, id);
                }
            }
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": not a valid tokenizer.json: " + e.getMessage(), e);
        }
        int[] endTokenIds = endTokenIds(file, addedTokens);

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
        return new HfTokenizer(tokenizer, file, maxId + 1, Map.copyOf(addedTokens), endTokenIds);
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
                throw new IOException(file + ": added token " + new JsonPrimitive(token.getKey()) + " has id "
                        + token.getValue() + " in the file, but Hugging Face tokenizers gives it id " + ids[0]
                        + " (the model vocabulary's ids must be 0..n-1, each once)");
            }
        }
    }

    /**
     * Gson's message without the class name of its cause and the second line (a link to its
     * troubleshooting guide): the command line prints a message as one line.
     */
    private static String gsonMessage(JsonParseException e) {
        Throwable t = e.getCause() != null && e.getCause().getMessage() != null ? e.getCause() : e;
        String m = String.valueOf(t.getMessage());
        int nl = m.indexOf('\n');
        return (nl < 0 ? m : m.substring(0, nl)).strip();
    }

    /** The start of a text, quoted, for an error message. */
    private static String preview(String text) {
        String t = text.length() > 40 ? text.substring(0, 37) + "..." : text;
        return new JsonPrimitive(t).toString();
    }

    /** Ids are JSON integers in [0, 2^31 - 2], so that the vocabulary size (largest + 1) is an int. */
    private static int tokenId(JsonElement e, String where) {
        if (e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
            String text = e.getAsString();
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
    static String describe(JsonElement e) {
        if (e == null) {
            return "nothing";
        }
        if (e.isJsonNull()) {
            return "null";
        }
        String kind = e.isJsonObject() ? "an object" : e.isJsonArray() ? "an array"
                : e.getAsJsonPrimitive().isString() ? "a string" : e.getAsJsonPrimitive().isNumber() ? "a number"
                : "a boolean";
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
    private static int largestModelId(JsonObject root) {
        JsonElement modelElement = root.get("model");
        if (modelElement == null || !modelElement.isJsonObject()) {
            throw new IllegalArgumentException("\"model\" must be an object, got " + describe(modelElement));
        }
        JsonElement vocab = modelElement.getAsJsonObject().get("vocab");
        if (vocab == null || !(vocab.isJsonArray() || vocab.isJsonObject())) {
            throw new IllegalArgumentException("model.vocab must be an object {token: id} or a list [[token, score], ...],"
                    + " got " + describe(vocab));
        }
        if (vocab.isJsonArray()) {
            return vocab.getAsJsonArray().size() - 1;
        }
        int max = -1;
        for (Map.Entry<String, JsonElement> entry : vocab.getAsJsonObject().entrySet()) {
            max = Math.max(max, tokenId(entry.getValue(), "model.vocab[" + new JsonPrimitive(entry.getKey()) + "]"));
        }
        return max;
    }

    private static int[] endTokenIds(Path file, Map<String, Integer> addedTokens) throws IOException {
        Set<Integer> ids = new LinkedHashSet<>();
        for (String token : new String[] {ChatTemplate.IM_END, ChatTemplate.END_OF_TEXT}) {
            Integer id = addedTokens.get(token);
            if (id != null) {
                ids.add(id);
            }
        }
        String eos = eosToken(file.toAbsolutePath().getParent().resolve(CONFIG_FILE));
        if (eos != null && addedTokens.containsKey(eos)) {
            ids.add(addedTokens.get(eos));
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** {@code eos_token} is a string, or an AddedToken object with {@code content}, in transformers' files. */
    private static String eosToken(Path config) throws IOException {
        if (!Files.isRegularFile(config)) {
            return null;
        }
        try {
            JsonElement root = JsonParser.parseString(TextFiles.readUtf8(config, "tokenizer config"));
            if (!root.isJsonObject()) {
                throw new IllegalArgumentException("the top level must be an object, got " + describe(root));
            }
            JsonElement eos = root.getAsJsonObject().get("eos_token");
            if (eos == null || eos.isJsonNull()) {
                return null;
            }
            JsonElement content = eos.isJsonObject() ? eos.getAsJsonObject().get("content") : eos;
            if (content == null || !content.isJsonPrimitive() || !content.getAsJsonPrimitive().isString()) {
                throw new IllegalArgumentException("eos_token must be a string or an object with a string"
                        + " \"content\", got " + describe(eos));
            }
            return content.getAsString();
        } catch (JsonParseException e) {
            throw new IOException(config + ": not valid JSON: " + gsonMessage(e), e);
        } catch (IllegalArgumentException e) {
            throw new IOException(config + ": " + e.getMessage(), e);
        }
    }
}

package org.lora4j.train.text;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

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
import java.util.Set;

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

    static Path resolveTokenizerFile(Path modelDirOrFile) {
        Objects.requireNonNull(modelDirOrFile, "modelDirOrFile must not be null");
        return Files.isDirectory(modelDirOrFile) ? modelDirOrFile.resolve(TOKENIZER_FILE) : modelDirOrFile;
    }

    static String readTokenizerJson(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no Hugging Face tokenizer.json there");
        }
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new IOException("cannot read tokenizer file " + file + " as UTF-8: " + e, e);
        }
    }

    static JsonObject parseTokenizerJson(Path file, String json) throws IOException {
        JsonElement root;
        try {
            root = JsonParser.parseString(json);
        } catch (JsonParseException e) {
            throw new IOException("malformed tokenizer file " + file + ": " + e.getMessage(), e);
        }
        if (!root.isJsonObject()) {
            throw new IOException("malformed tokenizer file " + file + ": the top level is not a JSON object");
        }
        return root.getAsJsonObject();
    }

    static HfTokenizer fromJson(Path file, String json, JsonObject root) throws IOException {
        Map<String, Integer> addedTokens = new HashMap<>();
        int maxId;
        try {
            maxId = largestModelId(root);
            if (root.has("added_tokens") && !root.get("added_tokens").isJsonNull()) {
                for (JsonElement e : root.getAsJsonArray("added_tokens")) {
                    JsonObject token = e.getAsJsonObject();
                    int id = token.get("id").getAsInt();
                    addedTokens.put(token.get("content").getAsString(), id);
                    maxId = Math.max(maxId, id);
                }
            }
        } catch (RuntimeException e) {
            // Gson reports a wrong shape with ClassCast/IllegalState/NumberFormat/NullPointer exceptions.
            throw new IOException("malformed tokenizer file " + file + ": " + e, e);
        }
        int[] endTokenIds = endTokenIds(file, addedTokens);

        HuggingFaceTokenizer tokenizer;
        try {
            tokenizer = HuggingFaceTokenizer.newInstance(
                    new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), DJL_OPTIONS);
        } catch (RuntimeException e) {
            throw new IOException("Hugging Face tokenizers could not load " + file + ": " + e.getMessage(), e);
        }
        return new HfTokenizer(tokenizer, file, maxId + 1, Map.copyOf(addedTokens), endTokenIds);
    }

    @Override
    public int[] encode(String text) {
        Objects.requireNonNull(text, "text must not be null");
        long[] ids = tokenizer.encode(text, false, false).getIds();
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
        return tokenizer.decode(longIds, false);
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
        JsonObject model = root.getAsJsonObject("model");
        if (model == null) {
            throw new IllegalStateException("no \"model\" object");
        }
        JsonElement vocab = model.get("vocab");
        if (vocab == null) {
            throw new IllegalStateException("model has no \"vocab\"");
        }
        if (vocab.isJsonArray()) {
            return vocab.getAsJsonArray().size() - 1;
        }
        int max = -1;
        for (Map.Entry<String, JsonElement> entry : vocab.getAsJsonObject().entrySet()) {
            max = Math.max(max, entry.getValue().getAsInt());
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
            JsonElement eos = JsonParser.parseString(Files.readString(config)).getAsJsonObject().get("eos_token");
            if (eos == null || eos.isJsonNull()) {
                return null;
            }
            return eos.isJsonObject() ? eos.getAsJsonObject().get("content").getAsString() : eos.getAsString();
        } catch (RuntimeException e) {
            throw new IOException("malformed tokenizer config " + config + ": " + e, e);
        }
    }
}

package org.lora4j.train.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.lora4j.core.AtomicFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * A tokenizer whose tokens are the bytes of the UTF-8 text, plus three ChatML special tokens.
 *
 * <p>Ids 0..255 are raw bytes, {@code <|endoftext|>} is 256, {@code <|im_start|>} 257 and
 * {@code <|im_end|>} 258, so {@link #vocabSize()} is 259. It needs no vocabulary file, which suits
 * models trained from scratch on small data, and it can write itself as a Hugging Face
 * {@code tokenizer.json} ({@link #save}) so that the Python side loads the same ids.
 *
 * <p>The Hugging Face form is GPT-2's byte-level BPE with no merges: the {@code ByteLevel}
 * pre-tokenizer (regex split off) maps each byte to one printable character, the vocabulary maps
 * the character for byte b to id b, and the specials are added tokens. It is exact: the tests
 * compare the ids and decoded text of both on ASCII, multibyte UTF-8, ChatML strings and random text.
 *
 * <p>A model directory's {@code tokenizer_config.json} ({@link Tokenizers#load}) gives it a chat template
 * and a pad token; {@code new ByteTokenizer()} speaks ChatML. Immutable and thread-safe.
 */
public final class ByteTokenizer implements Tokenizer {

    static final int END_OF_TEXT = 256;
    static final int IM_START = 257;
    static final int IM_END = 258;
    static final int VOCAB_SIZE = 259;

    /** The special tokens; the id of {@code SPECIALS.get(k)} is 256 + k. */
    private static final List<String> SPECIALS = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>");

    /** Every special token starts with this, so encode only tries to match where it occurs. */
    private static final String SPECIAL_PREFIX = "<|";

    /** The Hugging Face form, built once; private because ObjectNode is mutable. */
    private static final ObjectNode HF_JSON = huggingFaceJson();

    private static final ObjectMapper JSON = new ObjectMapper();

    private final TokenizerConfig config;

    /** The byte tokenizer with ChatML as its chat template. */
    public ByteTokenizer() {
        this(TokenizerConfig.none());
    }

    /** With a model directory's chat template and special tokens. */
    ByteTokenizer(TokenizerConfig config) {
        this.config = Objects.requireNonNull(config, "config must not be null");
    }

    @Override
    public int[] encode(String text) {
        return encode(text, null, null);
    }

    /** Each byte of a character has the character's span, each special token its own. */
    @Override
    public Encoding encodeWithOffsets(String text) {
        IntList starts = new IntList(text.length() + 16);
        IntList ends = new IntList(text.length() + 16);
        int[] ids = encode(text, starts, ends);
        return new Encoding(ids, starts.toArray(), ends.toArray());
    }

    private int[] encode(String text, IntList starts, IntList ends) {
        Objects.requireNonNull(text, "text must not be null");
        IntList ids = new IntList(text.length() + 16);
        int segmentStart = 0;
        int at = text.indexOf(SPECIAL_PREFIX);
        while (at >= 0) {
            int special = specialAt(text, at);
            if (special < 0) {
                at = text.indexOf(SPECIAL_PREFIX, at + 1);
                continue;
            }
            appendBytes(ids, text, segmentStart, at, starts, ends);
            ids.add(END_OF_TEXT + special);
            segmentStart = at + SPECIALS.get(special).length();
            if (starts != null) {
                starts.add(at);
                ends.add(segmentStart);
            }
            at = text.indexOf(SPECIAL_PREFIX, segmentStart);
        }
        appendBytes(ids, text, segmentStart, text.length(), starts, ends);
        return ids.toArray();
    }

    /**
     * Bytes between special tokens are decoded together, so multibyte characters come back whole.
     * Malformed UTF-8 (a model can emit any byte sequence) becomes U+FFFD rather than an exception, one
     * per maximal ill-formed subpart as Unicode recommends and Rust's {@code from_utf8_lossy} (so Hugging
     * Face) does; Java's own decoder differs on some sequences, such as encoded surrogates.
     */
    @Override
    public String decode(int[] ids) {
        Objects.requireNonNull(ids, "ids must not be null");
        StringBuilder text = new StringBuilder(ids.length);
        byte[] pending = new byte[ids.length];
        int count = 0;
        for (int i = 0; i < ids.length; i++) {
            int id = ids[i];
            if (id < 0 || id >= VOCAB_SIZE) {
                throw new IllegalArgumentException("ids[" + i + "] = " + id
                        + " is outside the byte tokenizer's vocabulary [0, " + VOCAB_SIZE + ")");
            }
            if (id < END_OF_TEXT) {
                pending[count++] = (byte) id;
            } else {
                decodeUtf8Lossy(pending, count, text);
                count = 0;
                text.append(SPECIALS.get(id - END_OF_TEXT));
            }
        }
        decodeUtf8Lossy(pending, count, text);
        return text.toString();
    }

    @Override
    public int vocabSize() {
        return VOCAB_SIZE;
    }

    @Override
    public OptionalInt specialTokenId(String token) {
        int k = SPECIALS.indexOf(token);
        return k < 0 ? OptionalInt.empty() : OptionalInt.of(END_OF_TEXT + k);
    }

    @Override
    public int[] endTokenIds() {
        return new int[] {IM_END, END_OF_TEXT};
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
     * Writes this tokenizer as {@code modelDir/tokenizer.json} in Hugging Face's format, and its
     * {@code tokenizer_config.json} ({@link Tokenizer#save}), replacing any files there, and returns the
     * tokenizer.json path. {@link Tokenizers#load} reads it back as a {@code ByteTokenizer}.
     */
    @Override
    public Path save(Path modelDir) throws IOException {
        Objects.requireNonNull(modelDir, "modelDir must not be null");
        Files.createDirectories(modelDir);
        Path file = modelDir.resolve(HfTokenizer.TOKENIZER_FILE);
        AtomicFiles.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(HF_JSON) + "\n");
        config.write(modelDir, this);
        return file;
    }

    /**
     * Whether a parsed {@code tokenizer.json} is exactly the one {@link #save} writes (member order and
     * formatting aside). Hugging Face's loader rejects unknown top-level keys, so the file cannot carry a
     * marker (nor a record of how it was made); its content is the marker. A file that differs in any
     * way goes to {@link HfTokenizer}, which is right for every {@code tokenizer.json}, this one included,
     * only native and slower to start.
     */
    static boolean isOwnHuggingFaceJson(JsonNode root) {
        return HF_JSON.equals(root);
    }

    @Override
    public String toString() {
        return "ByteTokenizer[vocab " + VOCAB_SIZE + "]";
    }

    private static int specialAt(String text, int at) {
        for (int k = 0; k < SPECIALS.size(); k++) {
            if (text.startsWith(SPECIALS.get(k), at)) {
                return k;
            }
        }
        return -1;
    }

    /**
     * UTF-8 bytes of {@code text[from, to)}. An unpaired surrogate (invalid UTF-16, which a JSON string
     * escape can produce) becomes U+FFFD; through DJL's JNI, Hugging Face makes it three.
     * Specials start with ASCII '<', so a segment boundary never splits a surrogate pair.
     */
    private static void appendBytes(IntList ids, String text, int from, int to, IntList starts, IntList ends) {
        int i = from;
        while (i < to) {
            int c = text.codePointAt(i);
            int start = i;
            i += Character.charCount(c);
            int before = ids.size();
            if (c >= Character.MIN_SURROGATE && c <= Character.MAX_SURROGATE) {
                c = 0xFFFD;
            }
            if (c < 0x80) {
                ids.add(c);
            } else if (c < 0x800) {
                ids.add(0xC0 | (c >> 6));
                ids.add(0x80 | (c & 0x3F));
            } else if (c < 0x10000) {
                ids.add(0xE0 | (c >> 12));
                ids.add(0x80 | ((c >> 6) & 0x3F));
                ids.add(0x80 | (c & 0x3F));
            } else {
                ids.add(0xF0 | (c >> 18));
                ids.add(0x80 | ((c >> 12) & 0x3F));
                ids.add(0x80 | ((c >> 6) & 0x3F));
                ids.add(0x80 | (c & 0x3F));
            }
            if (starts != null) {
                for (int k = before; k < ids.size(); k++) {
                    starts.add(start);
                    ends.add(i);
                }
            }
        }
    }

    /**
     * UTF-8 to text, replacing each maximal ill-formed subpart with U+FFFD (the Unicode Standard,
     * section 3.9; its table 3-7 gives the valid second-byte range of each lead byte, later bytes are
     * always 80..BF).
     */
    static void decodeUtf8Lossy(byte[] bytes, int length, StringBuilder out) {
        int i = 0;
        while (i < length) {
            int b0 = bytes[i] & 0xFF;
            if (b0 < 0x80) {
                out.append((char) b0);
                i++;
                continue;
            }
            int size;
            int low = 0x80;
            int high = 0xBF;
            if (b0 >= 0xC2 && b0 <= 0xDF) {
                size = 2;
            } else if (b0 >= 0xE0 && b0 <= 0xEF) {
                size = 3;
                if (b0 == 0xE0) {
                    low = 0xA0; // shorter forms are overlong
                } else if (b0 == 0xED) {
                    high = 0x9F; // ED A0..BF would encode surrogates
                }
            } else if (b0 >= 0xF0 && b0 <= 0xF4) {
                size = 4;
                if (b0 == 0xF0) {
                    low = 0x90; // overlong
                } else if (b0 == 0xF4) {
                    high = 0x8F; // above U+10FFFF
                }
            } else {
                out.append('\uFFFD'); // continuation byte, C0, C1 or F5..FF: never valid here
                i++;
                continue;
            }
            int codePoint = b0 & (0xFF >> (size + 1));
            int next = i + 1;
            boolean complete = true;
            for (int k = 1; k < size; k++, next++) {
                int b = next < length ? bytes[next] & 0xFF : -1;
                boolean valid = k == 1 ? (b >= low && b <= high) : (b >= 0x80 && b <= 0xBF);
                if (!valid) {
                    complete = false;
                    break;
                }
                codePoint = (codePoint << 6) | (b & 0x3F);
            }
            if (complete) {
                out.appendCodePoint(codePoint);
            } else {
                out.append('\uFFFD');
            }
            i = next;
        }
    }

    /**
     * GPT-2's {@code bytes_to_unicode}: printable Latin-1 bytes stand for themselves, the other 68 map
     * to U+0100 onwards in byte order. This is the alphabet Hugging Face's {@code ByteLevel} uses.
     */
    static char[] byteLevelAlphabet() {
        char[] alphabet = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            alphabet[b] = printable ? (char) b : (char) next++;
        }
        return alphabet;
    }

    private static ObjectNode huggingFaceJson() {
        ObjectMapper json = new ObjectMapper();
        ArrayNode added = json.createArrayNode();
        for (int k = 0; k < SPECIALS.size(); k++) {
            added.addObject()
                    .put("id", END_OF_TEXT + k)
                    .put("content", SPECIALS.get(k))
                    .put("single_word", false)
                    .put("lstrip", false)
                    .put("rstrip", false)
                    .put("normalized", false)
                    .put("special", true);
        }

        ObjectNode vocab = json.createObjectNode();
        char[] alphabet = byteLevelAlphabet();
        for (int b = 0; b < 256; b++) {
            vocab.put(String.valueOf(alphabet[b]), b);
        }
        ObjectNode model = json.createObjectNode();
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        model.set("vocab", vocab);
        // No merges: every byte stays its own token.
        model.putArray("merges");

        ObjectNode root = json.createObjectNode();
        root.put("version", "1.0");
        // Null truncation and padding: the file itself never cuts or pads.
        root.putNull("truncation");
        root.putNull("padding");
        root.set("added_tokens", added);
        root.putNull("normalizer");
        // use_regex false: no GPT-2 word split (with no merges the split cannot change the ids);
        // add_prefix_space false: no space is put before the text, which would add an id.
        root.set("pre_tokenizer", byteLevel(json));
        root.putNull("post_processor");
        root.set("decoder", byteLevel(json));
        root.set("model", model);
        return root;
    }

    private static ObjectNode byteLevel(ObjectMapper json) {
        ObjectNode byteLevel = json.createObjectNode();
        byteLevel.put("type", "ByteLevel");
        byteLevel.put("add_prefix_space", false);
        byteLevel.put("trim_offsets", false);
        byteLevel.put("use_regex", false);
        return byteLevel;
    }

    /** A growable int array, to avoid boxing a token per byte. */
    private static final class IntList {
        private int[] values;
        private int size;

        IntList(int capacity) {
            values = new int[Math.max(capacity, 16)];
        }

        void add(int value) {
            if (size == values.length) {
                values = Arrays.copyOf(values, values.length * 2);
            }
            values[size++] = value;
        }

        int size() {
            return size;
        }

        int[] toArray() {
            return Arrays.copyOf(values, size);
        }
    }
}

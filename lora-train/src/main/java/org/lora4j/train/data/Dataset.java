package org.lora4j.train.data;

import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.EncodedChat;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.Tokenizer;
import org.nd4j.shade.jackson.core.JsonProcessingException;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * A tokenised JSONL file: one training sequence per line, in one of two forms:
 * <ul>
 *   <li>{@code {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}}:
 *       ChatML, loss on the assistant's tokens only ({@link ChatTemplate#encode});</li>
 *   <li>{@code {"text": ...}}: loss on every token ({@link ChatTemplate#encodeText}).</li>
 * </ul>
 * Blank lines are skipped. A malformed line is an error naming the file and line number.
 * Sequences longer than the maximum length are truncated (and counted, and logged) or refused,
 * as the caller chooses: never cut silently.
 *
 * @param file      where it came from
 * @param examples  one per non-blank line, in file order
 * @param lines     the 1-based line number of each example
 * @param truncated how many examples were cut to the maximum length
 * @param sha256    hash of the file's bytes, recorded with every output made from it
 */
public record Dataset(Path file, List<EncodedChat> examples, List<Integer> lines, int truncated, String sha256) {
    private static final Logger log = LoggerFactory.getLogger(Dataset.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What to do with a sequence longer than the maximum length. */
    public enum Overflow {
        /** Keep the first maxLength tokens; the count is logged and kept in {@link #truncated()}. */
        TRUNCATE,
        /** Refuse the file, naming the first line that is too long. */
        REFUSE;

        public static Overflow parse(String s) {
            try {
                return valueOf(s.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("overflow policy must be truncate or refuse, got '" + s + "'");
            }
        }
    }

    public Dataset {
        examples = List.copyOf(examples);
        lines = List.copyOf(lines);
    }

    public int size() {
        return examples.size();
    }

    /** Reads and tokenises a JSONL file. */
    public static Dataset load(Path file, Tokenizer tokenizer, int maxLength, Overflow overflow) throws IOException {
        Objects.requireNonNull(tokenizer, "tokenizer");
        if (!Files.isRegularFile(file)) {
            throw new IOException(file + ": no such data file");
        }
        byte[] bytes = Files.readAllBytes(file);
        List<EncodedChat> raw = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        try (BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            int number = 0;
            while ((line = reader.readLine()) != null) {
                number++;
                if (!line.isBlank()) {
                    raw.add(parseLine(file, number, line, tokenizer));
                    lines.add(number);
                }
            }
        }
        return limit(file, raw, lines, maxLength, overflow, sha256(bytes));
    }

    /**
     * Plain texts (loss on every token), e.g. the paragraphs of a corpus for pre-training; {@code name}
     * stands in for the file in messages and the hash covers the texts.
     */
    public static Dataset fromTexts(Path name, List<String> texts, Tokenizer tokenizer, int maxLength,
                                    Overflow overflow) {
        List<EncodedChat> raw = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        StringBuilder all = new StringBuilder();
        for (int i = 0; i < texts.size(); i++) {
            raw.add(ChatTemplate.encodeText(tokenizer, texts.get(i)));
            lines.add(i + 1);
            all.append(texts.get(i)).append('\u0000');
        }
        return limit(name, raw, lines, maxLength, overflow, sha256(all.toString().getBytes(StandardCharsets.UTF_8)));
    }

    private static Dataset limit(Path file, List<EncodedChat> raw, List<Integer> rawLines, int maxLength,
                                 Overflow overflow, String sha) {
        if (maxLength < 2) {
            throw new IllegalArgumentException("max length must be >= 2 (one input and one target), got " + maxLength);
        }
        List<EncodedChat> examples = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        int truncated = 0;
        for (int i = 0; i < raw.size(); i++) {
            EncodedChat e = raw.get(i);
            int number = rawLines.get(i);
            if (e.length() > maxLength) {
                if (overflow == Overflow.REFUSE) {
                    throw new IllegalArgumentException(file + ":" + number + ": " + e.length()
                            + " tokens, more than the maximum length " + maxLength
                            + " (raise it, or choose truncation)");
                }
                e = new EncodedChat(java.util.Arrays.copyOf(e.ids(), maxLength),
                        java.util.Arrays.copyOf(e.lossMask(), maxLength));
                truncated++;
            }
            if (countTargetsAfterFirst(e) == 0) {
                log.warn("{}:{}: no target token left (after truncation to {}); the line is skipped",
                        file, number, maxLength);
                continue;
            }
            examples.add(e);
            lines.add(number);
        }
        if (examples.isEmpty()) {
            throw new IllegalArgumentException(file + ": no usable examples");
        }
        if (truncated > 0) {
            log.warn("{}: {} of {} examples were longer than {} tokens and were truncated",
                    file, truncated, examples.size(), maxLength);
        }
        return new Dataset(file, examples, lines, truncated, sha);
    }

    /** A target needs a token before it, so a target at position 0 is never scored. */
    private static int countTargetsAfterFirst(EncodedChat e) {
        boolean[] m = e.lossMask();
        int c = 0;
        for (int i = 1; i < m.length; i++) {
            c += m[i] ? 1 : 0;
        }
        return c;
    }

    private static EncodedChat parseLine(Path file, int number, String line, Tokenizer tokenizer) {
        String where = file + ":" + number;
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(where + ": not valid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(where + ": expected a JSON object with \"messages\" or \"text\"");
        }
        try {
            if (node.has("messages")) {
                JsonNode msgs = node.get("messages");
                if (!msgs.isArray() || msgs.isEmpty()) {
                    throw new IllegalArgumentException("\"messages\" must be a non-empty array");
                }
                List<Message> messages = new ArrayList<>();
                for (int i = 0; i < msgs.size(); i++) {
                    JsonNode m = msgs.get(i);
                    JsonNode role = m.get("role");
                    JsonNode content = m.get("content");
                    if (role == null || !role.isTextual() || content == null || !content.isTextual()) {
                        throw new IllegalArgumentException("messages[" + i + "] needs string \"role\" and \"content\"");
                    }
                    messages.add(new Message(role.asText(), content.asText()));
                }
                return ChatTemplate.encode(tokenizer, messages);
            }
            if (node.has("text")) {
                JsonNode text = node.get("text");
                if (!text.isTextual()) {
                    throw new IllegalArgumentException("\"text\" must be a string");
                }
                return ChatTemplate.encodeText(tokenizer, text.asText());
            }
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
        throw new IllegalArgumentException(where + ": expected a \"messages\" or a \"text\" field, got "
                + iteratorToList(node.fieldNames()));
    }

    private static List<String> iteratorToList(java.util.Iterator<String> it) {
        List<String> l = new ArrayList<>();
        it.forEachRemaining(l::add);
        return l;
    }

    /**
     * Splits off a held-out set: a seeded shuffle, then the first round(fraction·n) examples (at
     * least one when the fraction is positive) are held out. Both parts keep their line numbers.
     *
     * @return {train, eval}
     */
    public Dataset[] split(double fraction, long seed) {
        if (!(fraction >= 0 && fraction < 1)) {
            throw new IllegalArgumentException("eval fraction must be in [0, 1), got " + fraction);
        }
        int n = examples.size();
        int held = fraction == 0 ? 0 : Math.max(1, (int) Math.round(fraction * n));
        if (held >= n) {
            throw new IllegalArgumentException(file + ": " + n + " examples are too few to hold out " + fraction);
        }
        int[] order = permutation(n, new SplittableRandom(seed));
        boolean[] heldOut = new boolean[n];
        for (int i = 0; i < held; i++) {
            heldOut[order[i]] = true;
        }
        // Both parts keep file order: the training order is shuffled per epoch anyway.
        List<EncodedChat> tr = new ArrayList<>();
        List<Integer> trLines = new ArrayList<>();
        List<EncodedChat> ev = new ArrayList<>();
        List<Integer> evLines = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            (heldOut[k] ? ev : tr).add(examples.get(k));
            (heldOut[k] ? evLines : trLines).add(lines.get(k));
        }
        // Which part a truncated example fell into is not recorded; the whole file's count stays here.
        return new Dataset[]{new Dataset(file, tr, trLines, 0, sha256), new Dataset(file, ev, evLines, 0, sha256)};
    }

    /** Fisher-Yates with the given RNG: the same seed gives the same order on every JVM. */
    static int[] permutation(int n, SplittableRandom rng) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every JVM", e);
        }
    }
}

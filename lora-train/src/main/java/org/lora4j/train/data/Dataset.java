package org.lora4j.train.data;

import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.EncodedChat;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.TextFiles;
import org.lora4j.train.text.Tokenizer;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

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
    /**
     * One JSON value per line: text after it ({@code {"text": "a"} {"text": "b"}}) and a key given twice
     * are errors, not silently dropped data.
     */
    private static final ObjectReader JSON_LINE = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .reader()
            .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

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

    /**
     * Reads and tokenises a JSONL file, streaming it line by line.
     *
     * @throws java.nio.file.NoSuchFileException when there is no such file
     * @throws IOException              when it is a directory or not a regular file, cannot be read, or is
     *                                  not UTF-8; the message names the file (and the line and byte offset)
     * @throws IllegalArgumentException when a line is not a JSON object of one of the two forms, or no line
     *                                  is usable; the message names the file, the line and the value at fault
     */
    public static Dataset load(Path file, Tokenizer tokenizer, int maxLength, Overflow overflow) throws IOException {
        Objects.requireNonNull(tokenizer, "tokenizer");
        Objects.requireNonNull(file, "file");
        requireDataFile(file, "JSONL data file (one JSON object per line)", ".jsonl");
        MessageDigest digest = newSha256();
        List<EncodedChat> raw = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        int[] count = new int[1];
        TextFiles.forEachLine(file, "JSONL data file", digest, (number, offset, line) -> {
            count[0] = number;
            if (!line.isBlank()) {
                raw.add(parseLine(file, number, line, tokenizer));
                lines.add(number);
            }
        });
        if (raw.isEmpty()) {
            throw new IllegalArgumentException(file + ": no examples: " + (count[0] == 0 ? "the file is empty"
                    : "all " + count[0] + " lines are blank")
                    + "; expected one JSON object per line, {\"messages\": [...]} or {\"text\": ...}");
        }
        return limit(file, raw, lines, maxLength, overflow, HexFormat.of().formatHex(digest.digest()));
    }

    /**
     * Reads a plain-text corpus for pre-training: one example per paragraph (paragraphs are separated by
     * blank lines and stripped of surrounding white space), loss on every token. Each example's line is
     * the line its paragraph starts on. The hash is that of {@link #fromTexts} over the paragraphs.
     *
     * @throws java.nio.file.NoSuchFileException when there is no such file
     * @throws IOException              when it is a directory, cannot be read, or is not UTF-8; the message
     *                                  names the file, the line and the byte offset
     * @throws IllegalArgumentException when it holds no text, or (with {@link Overflow#REFUSE}) a paragraph
     *                                  is too long; the message names the file and line
     */
    public static Dataset loadText(Path file, Tokenizer tokenizer, int maxLength, Overflow overflow) throws IOException {
        Objects.requireNonNull(tokenizer, "tokenizer");
        Objects.requireNonNull(file, "file");
        requireDataFile(file, "plain-text corpus (paragraphs separated by blank lines)", ".txt");
        String text = TextFiles.readUtf8(file, "plain-text corpus");
        List<String> paragraphs = new ArrayList<>();
        List<Integer> starts = new ArrayList<>();
        // Paragraphs end at a blank line (the regex \n\s*\n: white space allowed on it), the split the
        // command line always made, so a corpus keeps its hash; \r\n files split alike, \r being white space.
        Matcher m = PARAGRAPH_BREAK.matcher(text);
        int from = 0;
        int line = 1;
        while (true) {
            boolean found = m.find();
            int to = found ? m.start() : text.length();
            String p = text.substring(from, to);
            if (!p.isBlank()) {
                int lead = 0;
                while (lead < p.length() && Character.isWhitespace(p.charAt(lead))) {
                    lead++;
                }
                paragraphs.add(p.strip());
                starts.add(line + countLineBreaks(p, 0, lead));
            }
            if (!found) {
                break;
            }
            line += countLineBreaks(text, from, m.end());
            from = m.end();
        }
        if (paragraphs.isEmpty()) {
            throw new IllegalArgumentException(file + ": no examples: " + (text.isEmpty() ? "the file is empty"
                    : "it holds only white space") + "; expected paragraphs of text separated by blank lines");
        }
        return fromTexts(file, paragraphs, starts, tokenizer, maxLength, overflow);
    }

    private static final Pattern PARAGRAPH_BREAK = Pattern.compile("\n\\s*\n");

    /** Line breaks in {@code s[from, to)}: \n, \r\n and a lone \r, as {@link TextFiles} counts them. */
    private static int countLineBreaks(String s, int from, int to) {
        int n = 0;
        for (int i = from; i < to; i++) {
            char c = s.charAt(i);
            if (c == '\n' || (c == '\r' && (i + 1 >= s.length() || s.charAt(i + 1) != '\n'))) {
                n++;
            }
        }
        return n;
    }

    /**
     * Refuses a path that is not a readable file, saying what it is and what was expected; for a
     * directory, the files in it that look like data are named, as a hint.
     */
    private static void requireDataFile(Path file, String expected, String suffix) throws IOException {
        if (Files.isDirectory(file)) {
            List<String> candidates = new ArrayList<>();
            try (Stream<Path> s = Files.list(file)) {
                s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(suffix)).sorted().limit(5)
                        .forEach(candidates::add);
            } catch (IOException e) {
                // the hint is optional: the error below stands without it
            }
            throw new IOException(file + " is a directory; expected a " + expected
                    + (candidates.isEmpty() ? "" : " such as " + file.resolve(candidates.get(0))
                    + (candidates.size() > 1 ? " (it holds " + String.join(", ", candidates) + ")" : "")));
        }
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such data file; expected a " + expected);
        }
        if (!Files.isRegularFile(file)) {
            throw new IOException(file + " is not a regular file; expected a " + expected);
        }
    }

    /**
     * Plain texts (loss on every token), e.g. the paragraphs of a corpus for pre-training; {@code name}
     * stands in for the file in messages and the hash covers the texts.
     */
    public static Dataset fromTexts(Path name, List<String> texts, Tokenizer tokenizer, int maxLength,
                                    Overflow overflow) {
        List<Integer> lines = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            lines.add(i + 1);
        }
        return fromTexts(name, texts, lines, tokenizer, maxLength, overflow);
    }

    private static Dataset fromTexts(Path name, List<String> texts, List<Integer> lines, Tokenizer tokenizer,
                                     int maxLength, Overflow overflow) {
        List<EncodedChat> raw = new ArrayList<>();
        MessageDigest digest = newSha256();
        for (int i = 0; i < texts.size(); i++) {
            try {
                raw.add(ChatTemplate.encodeText(tokenizer, texts.get(i)));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(name + ":" + lines.get(i) + ": " + e.getMessage(), e);
            }
            digest.update(texts.get(i).getBytes(StandardCharsets.UTF_8));
            digest.update((byte) 0);
        }
        return limit(name, raw, lines, maxLength, overflow, HexFormat.of().formatHex(digest.digest()));
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
            throw new IllegalArgumentException(file + ": no usable examples: every one of the " + raw.size()
                    + " examples was skipped, having no target token after truncation to " + maxLength + " tokens");
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
            node = JSON_LINE.readTree(line);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(where + ": not valid JSON at column "
                    + TextFiles.jsonLocation(e).getColumnNr() + ": " + TextFiles.jsonMessage(e));
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(where + ": expected a JSON object with \"messages\" or \"text\", got "
                    + describe(node));
        }
        try {
            if (node.has("messages")) {
                JsonNode msgs = node.get("messages");
                if (!msgs.isArray() || msgs.isEmpty()) {
                    throw new IllegalArgumentException("\"messages\" must be a non-empty array of {\"role\", \"content\"}"
                            + " objects, got " + describe(msgs));
                }
                List<Message> messages = new ArrayList<>();
                for (int i = 0; i < msgs.size(); i++) {
                    JsonNode m = msgs.get(i);
                    if (!m.isObject()) {
                        throw new IllegalArgumentException("messages[" + i + "] must be an object with string"
                                + " \"role\" and \"content\", got " + describe(m));
                    }
                    String role = string(m, "messages[" + i + "].role");
                    String content = string(m, "messages[" + i + "].content");
                    try {
                        messages.add(new Message(role, content));
                    } catch (IllegalArgumentException e) {
                        throw new IllegalArgumentException("messages[" + i + "]: " + e.getMessage(), e);
                    }
                }
                return tokenizer.encodeChat(messages);
            }
            if (node.has("text")) {
                JsonNode text = node.get("text");
                if (!text.isTextual()) {
                    throw new IllegalArgumentException("\"text\" must be a string, got " + describe(text));
                }
                return ChatTemplate.encodeText(tokenizer, text.asText());
            }
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
        throw new IllegalArgumentException(where + ": expected a \"messages\" or a \"text\" field, got "
                + (node.isEmpty() ? "an empty object" : "the fields " + iteratorToList(node.fieldNames())));
    }

    /** The string at {@code key} of {@code path} (as in "messages[0].role"), or an error naming what is there. */
    private static String string(JsonNode object, String path) {
        JsonNode n = object.get(path.substring(path.lastIndexOf('.') + 1));
        if (n == null || !n.isTextual()) {
            throw new IllegalArgumentException(path + " must be a string, got " + (n == null ? "nothing (no such key)"
                    : describe(n)));
        }
        return n.asText();
    }

    /** What a JSON value is, for an error message: its type and, shortened, its text. */
    static String describe(JsonNode n) {
        if (n == null || n.isMissingNode()) {
            return "nothing";
        }
        String kind = n.isNull() ? "null" : n.isTextual() ? "a string" : n.isNumber() ? "a number"
                : n.isBoolean() ? "a boolean" : n.isArray() ? "an array" : n.isObject() ? "an object" : n.getNodeType().toString();
        if (n.isNull()) {
            return kind;
        }
        String text = n.toString();
        return kind + " " + (text.length() > 40 ? text.substring(0, 37) + "..." : text);
    }

    private static List<String> iteratorToList(java.util.Iterator<String> it) {
        List<String> l = new ArrayList<>();
        it.forEachRemaining(name -> l.add(TextFiles.quote(name)));
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
        return HexFormat.of().formatHex(newSha256().digest(bytes));
    }

    private static MessageDigest newSha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every JVM", e);
        }
    }
}

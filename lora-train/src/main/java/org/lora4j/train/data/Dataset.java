package org.lora4j.train.data;

import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.EncodedChat;
import org.lora4j.train.text.TextFiles;
import org.lora4j.train.text.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
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
 * A tokenised training file: one sequence per non-blank line of a JSONL file, in one of the five
 * {@link DataFormat}s (messages, ShareGPT, prompt/completion, Alpaca, text; docs/data-formats.md), or one
 * per paragraph of a plain-text corpus. The first non-blank line decides the format and every line must
 * fit it; a line that does not is an error naming the file, the line and what is wrong.
 *
 * <p>{@link #load(Path, Tokenizer)} keeps every token of every line, which is what packing wants (it
 * cuts the stream into rows itself). Padded training needs a length limit: {@link #limit} truncates the
 * longer sequences (counted, and logged) or refuses them, never cuts silently.
 *
 * @param file      where it came from
 * @param format    the format of its lines ({@link DataFormat#TEXT} for a plain-text corpus)
 * @param examples  one per non-blank line, in file order
 * @param lines     the 1-based line number of each example
 * @param truncated how many examples were cut to a maximum length
 * @param sha256    hash of the file's bytes, recorded with every output made from it
 */
public record Dataset(Path file, DataFormat format, List<EncodedChat> examples, List<Integer> lines, int truncated,
                      String sha256) {
    private static final Logger log = LoggerFactory.getLogger(Dataset.class);

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
        Objects.requireNonNull(format, "format");
        examples = List.copyOf(examples);
        lines = List.copyOf(lines);
        if (examples.size() != lines.size()) {
            throw new IllegalArgumentException(examples.size() + " examples but " + lines.size() + " line numbers");
        }
    }

    public int size() {
        return examples.size();
    }

    /**
     * Reads and tokenises a JSONL file, streaming it line by line, keeping every token of every line.
     * The format is that of the first non-blank line ({@link DataFormat}); lines with no target token
     * after the first position (nothing to learn) are skipped with a warning.
     *
     * @throws java.nio.file.NoSuchFileException when there is no such file
     * @throws IOException              when it is a directory or not a regular file, cannot be read, or is
     *                                  not UTF-8; the message names the file (and the line and byte offset)
     * @throws IllegalArgumentException when a line is not a JSON object of the file's format, or no line is
     *                                  usable; the message names the file, the line and the value at fault
     */
    public static Dataset load(Path file, Tokenizer tokenizer) throws IOException {
        Objects.requireNonNull(tokenizer, "tokenizer");
        Objects.requireNonNull(file, "file");
        requireDataFile(file, "JSONL data file (one JSON object per line)", ".jsonl");
        MessageDigest digest = newSha256();
        List<EncodedChat> raw = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        int[] count = new int[1];
        DataFormat[] format = new DataFormat[1];
        int[] detectedAt = new int[1];
        TextFiles.forEachLine(file, "JSONL data file", digest, (number, offset, line) -> {
            count[0] = number;
            if (line.isBlank()) {
                return;
            }
            try {
                JsonNode node = JsonlExamples.parse(line);
                if (format[0] == null) {
                    format[0] = JsonlExamples.detect(node);
                    detectedAt[0] = number;
                } else {
                    JsonlExamples.requireFits(node, format[0], detectedAt[0], number);
                }
                raw.add(JsonlExamples.encode(format[0], node, tokenizer));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(file + ":" + number + ": " + e.getMessage(), e);
            }
            lines.add(number);
        });
        if (raw.isEmpty()) {
            throw new IllegalArgumentException(file + ": no examples: " + (count[0] == 0 ? "the file is empty"
                    : "all " + count[0] + " lines are blank")
                    + "; expected one JSON object per line, such as {\"messages\": [...]} or {\"text\": ...} (the formats"
                    + " are messages, sharegpt, prompt/completion, alpaca and text)");
        }
        log.debug("{}: {} examples in the {} format (from line {})", file, raw.size(), format[0], detectedAt[0]);
        return usable(file, format[0], raw, lines, 0, HexFormat.of().formatHex(digest.digest()),
                "no target token after the first");
    }

    /**
     * {@link #load(Path, Tokenizer)}, then {@link #limit}: the data of padded training, whose rows are at
     * most {@code maxLength} tokens.
     */
    public static Dataset load(Path file, Tokenizer tokenizer, int maxLength, Overflow overflow) throws IOException {
        return load(file, tokenizer).limit(maxLength, overflow);
    }

    /**
     * Reads a plain-text corpus for pre-training: one example per paragraph (paragraphs are separated by
     * blank lines and stripped of surrounding white space), loss on every token, every token kept. Each example's line is
     * the line its paragraph starts on. The hash is that of {@link #fromTexts} over the paragraphs.
     *
     * @throws java.nio.file.NoSuchFileException when there is no such file
     * @throws IOException              when it is a directory, cannot be read, or is not UTF-8; the message
     *                                  names the file, the line and the byte offset
     * @throws IllegalArgumentException when it holds no text; the message names the file
     */
    public static Dataset loadText(Path file, Tokenizer tokenizer) throws IOException {
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
        return fromTexts(file, paragraphs, starts, tokenizer);
    }

    /** {@link #loadText(Path, Tokenizer)}, then {@link #limit}. */
    public static Dataset loadText(Path file, Tokenizer tokenizer, int maxLength, Overflow overflow) throws IOException {
        return loadText(file, tokenizer).limit(maxLength, overflow);
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
     * stands in for the file in messages and the hash covers the texts. Every token is kept.
     */
    public static Dataset fromTexts(Path name, List<String> texts, Tokenizer tokenizer) {
        List<Integer> lines = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            lines.add(i + 1);
        }
        return fromTexts(name, texts, lines, tokenizer);
    }

    /** {@link #fromTexts(Path, List, Tokenizer)}, then {@link #limit}. */
    public static Dataset fromTexts(Path name, List<String> texts, Tokenizer tokenizer, int maxLength,
                                    Overflow overflow) {
        return fromTexts(name, texts, tokenizer).limit(maxLength, overflow);
    }

    private static Dataset fromTexts(Path name, List<String> texts, List<Integer> lines, Tokenizer tokenizer) {
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
        if (raw.isEmpty()) {
            throw new IllegalArgumentException(name + ": no examples: no texts were given");
        }
        return usable(name, DataFormat.TEXT, raw, lines, 0, HexFormat.of().formatHex(digest.digest()),
                "no target token after the first");
    }

    /**
     * This dataset with every sequence at most {@code maxLength} tokens, for padded training (packing
     * takes sequences of any length): a longer one is cut to its first {@code maxLength} tokens, counted
     * in {@link #truncated()} and logged, or, with {@link Overflow#REFUSE}, refused with an error naming
     * its line. A sequence left with no target is skipped, with a warning. Applying the same limit
     * twice changes nothing the second time.
     *
     * @throws IllegalArgumentException when {@code maxLength < 2}, a sequence is too long and the policy is
     *                                  to refuse, or no sequence keeps a target
     */
    public Dataset limit(int maxLength, Overflow overflow) {
        Objects.requireNonNull(overflow, "overflow");
        if (maxLength < 2) {
            throw new IllegalArgumentException("max length must be >= 2 (one input and one target), got " + maxLength);
        }
        List<EncodedChat> cut = new ArrayList<>(examples.size());
        int newlyTruncated = 0;
        for (int i = 0; i < examples.size(); i++) {
            EncodedChat e = examples.get(i);
            if (e.length() > maxLength) {
                if (overflow == Overflow.REFUSE) {
                    throw new IllegalArgumentException(file + ":" + lines.get(i) + ": " + e.length()
                            + " tokens, more than the maximum length " + maxLength
                            + " (raise it, or choose truncation)");
                }
                e = new EncodedChat(java.util.Arrays.copyOf(e.ids(), maxLength),
                        java.util.Arrays.copyOf(e.lossMask(), maxLength));
                newlyTruncated++;
            }
            cut.add(e);
        }
        if (newlyTruncated == 0) {
            return this;
        }
        Dataset limited = usable(file, format, cut, lines, truncated + newlyTruncated, sha256,
                "no target token left after truncation to " + maxLength + " tokens");
        log.warn("{}: {} of {} examples were longer than {} tokens and were truncated",
                file, newlyTruncated, examples.size(), maxLength);
        return limited;
    }

    /** The examples that have a target after the first token; the others are skipped with a warning. */
    private static Dataset usable(Path file, DataFormat format, List<EncodedChat> raw, List<Integer> rawLines,
                                  int truncated, String sha, String why) {
        List<EncodedChat> examples = new ArrayList<>(raw.size());
        List<Integer> lines = new ArrayList<>(raw.size());
        for (int i = 0; i < raw.size(); i++) {
            if (countTargetsAfterFirst(raw.get(i)) == 0) {
                log.warn("{}:{}: {}; the line is skipped", file, rawLines.get(i), why);
                continue;
            }
            examples.add(raw.get(i));
            lines.add(rawLines.get(i));
        }
        if (examples.isEmpty()) {
            throw new IllegalArgumentException(file + ": no usable examples: every one of the " + raw.size()
                    + " examples was skipped, having " + why);
        }
        return new Dataset(file, format, examples, lines, truncated, sha);
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
        return new Dataset[]{new Dataset(file, format, tr, trLines, 0, sha256), new Dataset(file, format, ev, evLines, 0, sha256)};
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

package org.lora4j.train.directions;

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

import java.io.IOException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * One side of a mean-difference direction: token sequences and, per sequence, which positions are
 * pooled ({@link Pooling}). Made from a JSONL file by {@link #load}, or from ids and masks.
 *
 * @param name   what the set is called in messages and metadata (the file)
 * @param sha256 hash of the file's bytes (or of whatever the set was made from)
 * @param ids    one token sequence per example
 * @param pooled per sequence, true at the positions whose residual is averaged
 * @param lines  the 1-based file line of each example
 */
public record ContrastSet(String name, String sha256, List<int[]> ids, List<boolean[]> pooled, List<Integer> lines) {
    private static final ObjectReader JSON_LINE = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .reader()
            .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    public ContrastSet {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(sha256, "sha256");
        ids = List.copyOf(ids);
        pooled = List.copyOf(pooled);
        lines = List.copyOf(lines);
        if (ids.size() != pooled.size() || ids.size() != lines.size()) {
            throw new IllegalArgumentException(name + ": " + ids.size() + " sequences, " + pooled.size() + " masks and "
                    + lines.size() + " line numbers");
        }
        long tokens = 0;
        for (int i = 0; i < ids.size(); i++) {
            if (ids.get(i).length != pooled.get(i).length) {
                throw new IllegalArgumentException(name + ":" + lines.get(i) + ": " + ids.get(i).length + " tokens but "
                        + pooled.get(i).length + " mask flags");
            }
            for (boolean b : pooled.get(i)) {
                tokens += b ? 1 : 0;
            }
        }
        if (tokens == 0) {
            throw new IllegalArgumentException(name + ": the set is empty: " + (ids.isEmpty() ? "no example"
                    : "no token is pooled in its " + ids.size() + " examples") + "; a mean needs at least one token");
        }
    }

    /** Examples. */
    public int size() {
        return ids.size();
    }

    /** Pooled positions over all examples. */
    public long tokens() {
        long n = 0;
        for (boolean[] m : pooled) {
            for (boolean b : m) {
                n += b ? 1 : 0;
            }
        }
        return n;
    }

    /**
     * {@code n} examples drawn without replacement by a seeded shuffle, kept in file order (the
     * paper's balancing: the larger set subsampled to the size of the smaller); the set itself
     * when it has no more than n.
     */
    public ContrastSet subsample(int n, long seed) {
        if (n >= size()) {
            return this;
        }
        if (n < 1) {
            throw new IllegalArgumentException("subsample size must be >= 1, got " + n);
        }
        int[] order = new int[size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = order.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        boolean[] keep = new boolean[size()];
        for (int i = 0; i < n; i++) {
            keep[order[i]] = true;
        }
        List<int[]> i2 = new ArrayList<>();
        List<boolean[]> p2 = new ArrayList<>();
        List<Integer> l2 = new ArrayList<>();
        for (int i = 0; i < size(); i++) {
            if (keep[i]) {
                i2.add(ids.get(i));
                p2.add(pooled.get(i));
                l2.add(lines.get(i));
            }
        }
        return new ContrastSet(name, sha256, i2, p2, l2);
    }

    /**
     * Reads a JSONL file of examples. Each non-blank line is one of
     * <ul>
     *   <li>{@code {"messages": [{"role", "content"}, ...]}}, the chat lines {@code lora4j sft} takes;</li>
     *   <li>{@code {"question": ..., "answer": ..., "label": ...}}, the sample lines {@code lora4j eval}
     *       writes (other fields ignored), read as a user question and an assistant answer; for
     *       last-prompt pooling the answer may be left out.</li>
     * </ul>
     * With {@code labels} given, only lines whose string {@code "label"} is one of them are kept, so
     * misaligned and aligned samples of one eval file make the two sets.
     *
     * @param maxLength the model's context; a longer example is refused, never cut
     * @throws IllegalArgumentException naming the file and line of a line that does not parse or
     *                                  has no pooled token, and for a set left empty (naming the
     *                                  labels the file does hold)
     */
    public static ContrastSet load(Path file, Tokenizer tokenizer, Pooling pooling, Set<String> labels, int maxLength)
            throws IOException {
        Objects.requireNonNull(tokenizer, "tokenizer");
        Objects.requireNonNull(pooling, "pooling");
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        List<int[]> ids = new ArrayList<>();
        List<boolean[]> pooled = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        Map<String, Integer> seenLabels = new TreeMap<>();
        int[] count = new int[1];
        TextFiles.forEachLine(file, "JSONL examples file", digest, (number, offset, line) -> {
            if (line.isBlank()) {
                return;
            }
            count[0]++;
            String where = file + ":" + number;
            JsonNode node;
            try {
                node = JSON_LINE.readTree(line);
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException(where + ": not valid JSON: " + TextFiles.jsonMessage(e));
            }
            if (node == null || !node.isObject()) {
                throw new IllegalArgumentException(where + ": expected a JSON object with \"messages\", or \"question\""
                        + " and \"answer\"");
            }
            if (labels != null) {
                JsonNode l = node.get("label");
                if (l == null || !l.isTextual()) {
                    throw new IllegalArgumentException(where + ": a label was asked for (" + String.join(",", labels)
                            + ") but the line has no string \"label\"");
                }
                seenLabels.merge(l.asText(), 1, Integer::sum);
                if (!labels.contains(l.asText())) {
                    return;
                }
            }
            try {
                List<Message> messages = messages(node);
                int[] seqIds;
                boolean[] mask;
                if (pooling.kind() == Pooling.Kind.ANSWER) {
                    EncodedChat e = tokenizer.encodeChat(messages);
                    seqIds = e.ids();
                    mask = e.lossMask();
                    mask[0] = false;   // never scored by the loss: nothing precedes it
                } else {
                    int end = messages.size();
                    if (end > 0 && messages.get(end - 1).isAssistant()) {
                        end--;
                    }
                    if (end == 0) {
                        throw new IllegalArgumentException("no message before the assistant's, so no prompt");
                    }
                    seqIds = tokenizer.encodeChatPrompt(messages.subList(0, end));
                    if (seqIds.length < pooling.k()) {
                        throw new IllegalArgumentException("the prompt has " + seqIds.length + " tokens, fewer than the "
                                + pooling.k() + " positions of pooling " + pooling);
                    }
                    mask = new boolean[seqIds.length];
                    for (int i = seqIds.length - pooling.k(); i < seqIds.length; i++) {
                        mask[i] = true;
                    }
                }
                if (seqIds.length > maxLength) {
                    throw new IllegalArgumentException(seqIds.length + " tokens, more than the model's context of "
                            + maxLength);
                }
                ids.add(seqIds);
                pooled.add(mask);
                lines.add(number);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
            }
        });
        String sha = HexFormat.of().formatHex(digest.digest());
        if (ids.isEmpty()) {
            throw new IllegalArgumentException(file + ": the set is empty: " + (count[0] == 0 ? "the file has no example"
                    : labels != null ? "no line has the label " + String.join(" or ", labels) + " (the file's labels: "
                    + seenLabels + ")" : "no example"));
        }
        return new ContrastSet(file.toString(), sha, ids, pooled, lines);
    }

    private static List<Message> messages(JsonNode node) {
        List<Message> out = new ArrayList<>();
        if (node.has("messages")) {
            JsonNode msgs = node.get("messages");
            if (!msgs.isArray() || msgs.isEmpty()) {
                throw new IllegalArgumentException("\"messages\" must be a non-empty array of {\"role\", \"content\"} objects");
            }
            for (int i = 0; i < msgs.size(); i++) {
                JsonNode m = msgs.get(i);
                out.add(new Message(text(m, "role", "messages[" + i + "]"), text(m, "content", "messages[" + i + "]")));
            }
            return out;
        }
        if (node.has("question")) {
            out.add(Message.user(text(node, "question", "line")));
            if (node.has("answer")) {
                out.add(Message.assistant(text(node, "answer", "line")));
            }
            return out;
        }
        throw new IllegalArgumentException("expected \"messages\" (chat lines) or \"question\" and \"answer\" (eval samples),"
                + " got the fields " + iterate(node.fieldNames()));
    }

    private static String text(JsonNode object, String key, String where) {
        JsonNode n = object == null || !object.isObject() ? null : object.get(key);
        if (n == null || !n.isTextual()) {
            throw new IllegalArgumentException(where + "." + key + " must be a string, got " + (n == null ? "nothing" : n));
        }
        return n.asText();
    }

    private static List<String> iterate(java.util.Iterator<String> it) {
        List<String> l = new ArrayList<>();
        it.forEachRemaining(l::add);
        return l;
    }
}

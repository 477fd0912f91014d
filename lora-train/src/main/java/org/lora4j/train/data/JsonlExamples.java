package org.lora4j.train.data;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import org.lora4j.train.text.ChatTemplate;
import org.lora4j.train.text.EncodedChat;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.TextFiles;
import org.lora4j.train.text.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One JSONL line to one training example, in each {@link DataFormat}. Every message this class throws
 * is one line saying what is wrong with the line; {@link Dataset#load} puts the file and line number
 * in front.
 *
 * <p>Messages reach ids only through the tokenizer's chat template ({@link Tokenizer#encodeChat},
 * {@link Tokenizer#encodeChatPrompt}): no format writes a template's markup itself.
 */
final class JsonlExamples {
    /**
     * One JSON value per line: text after it ({@code {"text": "a"} {"text": "b"}}) and a key given twice
     * are errors, not silently dropped data.
     */
    private static final ObjectReader JSON_LINE = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .reader()
            .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** ShareGPT's speakers, as ShareGPT dumps, FastChat and LLaMA-Factory write them, and the chat roles too. */
    private static final Map<String, String> SHAREGPT_ROLES = Map.of(
            "system", "system", "human", "user", "gpt", "assistant", "user", "user", "assistant", "assistant");
    private static final String SHAREGPT_FROM = "system, human, gpt, user, assistant";

    private JsonlExamples() {
    }

    /** The line as a JSON object, or an error saying where the JSON breaks or what the value is instead. */
    static JsonNode parse(String line) {
        JsonNode node;
        try {
            node = JSON_LINE.readTree(line);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not valid JSON at column " + TextFiles.jsonLocation(e).getColumnNr()
                    + ": " + TextFiles.jsonMessage(e));
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException("expected a JSON object (one example per line), got " + describe(node));
        }
        return node;
    }

    /**
     * The format of the first line of a file: the first of {@link DataFormat#values()} whose required keys
     * the line has; none is an error naming the five formats and their keys.
     */
    static DataFormat detect(JsonNode line) {
        for (DataFormat f : DataFormat.values()) {
            if (fits(line, f)) {
                return f;
            }
        }
        StringBuilder expected = new StringBuilder();
        for (DataFormat f : DataFormat.values()) {
            expected.append(expected.isEmpty() ? "" : ", ").append(f.describe());
        }
        StringBuilder partial = new StringBuilder();
        for (DataFormat f : DataFormat.values()) {
            List<String> has = f.requiredKeys().stream().filter(line::has).toList();
            if (!has.isEmpty()) {
                String lacks = f.requiredKeys().stream().filter(k -> !line.has(k)).findFirst().orElseThrow();
                partial.append(partial.isEmpty() ? " (" : "; ").append(f.label()).append(" needs \"").append(lacks)
                        .append("\" too");
            }
        }
        throw new IllegalArgumentException("no data format fits this line, which has " + keys(line)
                + hints(line, null) + (partial.isEmpty() ? "" : partial.append(')'))
                + "; expected the keys of one of: " + expected);
    }

    /**
     * Refuses a line that lacks a key of the file's format (detected from line {@code detectedAt}), saying
     * which key, the file's format, and the format the line looks like if it fits another one.
     */
    static void requireFits(JsonNode line, DataFormat format, int detectedAt, int number) {
        if (fits(line, format)) {
            return;
        }
        String missing = format.requiredKeys().stream().filter(k -> !line.has(k)).findFirst().orElseThrow();
        String other = "";
        for (DataFormat f : DataFormat.values()) {
            if (fits(line, f)) {
                other = " (a " + f.label() + " line: one file holds one format)";
                break;
            }
        }
        throw new IllegalArgumentException("line " + number + " has no \"" + missing + "\": this file is in the "
                + format.describe() + " format, detected from line " + detectedAt + "; line " + number + " has "
                + keys(line) + other + hints(line, format));
    }

    /** The training example of a line that fits {@code format}: its ids and where the loss falls. */
    static EncodedChat encode(DataFormat format, JsonNode line, Tokenizer tokenizer) {
        refuseMisspeltOptionalKeys(line, format);
        return switch (format) {
            case MESSAGES -> tokenizer.encodeChat(messages(line.get("messages"), "messages"));
            case SHAREGPT -> tokenizer.encodeChat(shareGpt(line));
            case PROMPT_COMPLETION -> promptCompletion(line, tokenizer);
            case ALPACA -> tokenizer.encodeChat(alpaca(line));
            case TEXT -> ChatTemplate.encodeText(tokenizer, string(line, "text"));
        };
    }

    private static boolean fits(JsonNode line, DataFormat format) {
        for (String key : format.requiredKeys()) {
            if (!line.has(key)) {
                return false;
            }
        }
        return true;
    }

    // ---------------------------------------------------------------------------------------------
    // The formats

    /**
     * {@code {"prompt": ..., "completion": ...}}. Standard (two strings): the prompt's tokens, then the
     * completion's and the end-of-text token ({@link ChatTemplate#encodeText}, as TRL appends the eos token
     * to a completion), the loss on the completion's. Each part is encoded on its own, so no token straddles
     * the boundary between what is given and what is learnt.
     *
     * <p>Conversational (two lists of messages): the conversation prompt + completion through the chat
     * template, with the loss where the template puts it (assistant messages) and after the prompt only.
     * Where the prompt ends is where the template's rendering of the prompt alone, with the generation
     * prompt, ends, as TRL finds it; so an assistant message inside the prompt (a few-shot example) is
     * context, not a target. A template that renders the prompt differently alone than followed by the
     * completion leaves no such point, and the line is refused rather than guessed at.
     */
    private static EncodedChat promptCompletion(JsonNode line, Tokenizer tokenizer) {
        JsonNode prompt = line.get("prompt");
        JsonNode completion = line.get("completion");
        if (prompt.isTextual() && completion.isTextual()) {
            if (completion.asText().isEmpty()) {
                throw new IllegalArgumentException("\"completion\" is empty: there is nothing to learn");
            }
            int[] given = tokenizer.encode(prompt.asText());
            EncodedChat learnt = ChatTemplate.encodeText(tokenizer, completion.asText());
            int[] ids = new int[given.length + learnt.length()];
            boolean[] mask = new boolean[ids.length];
            System.arraycopy(given, 0, ids, 0, given.length);
            System.arraycopy(learnt.ids(), 0, ids, given.length, learnt.length());
            System.arraycopy(learnt.lossMask(), 0, mask, given.length, learnt.length());
            return new EncodedChat(ids, mask);
        }
        if (prompt.isArray() && completion.isArray()) {
            List<Message> given = messages(prompt, "prompt");
            List<Message> learnt = messages(completion, "completion");
            if (!learnt.get(0).isAssistant()) {
                throw new IllegalArgumentException("completion[0] must be an assistant message (the answer to the"
                        + " prompt), got role " + TextFiles.quote(learnt.get(0).role()));
            }
            List<Message> all = new ArrayList<>(given);
            all.addAll(learnt);
            EncodedChat whole = tokenizer.encodeChat(all);
            int[] ids = whole.ids();
            int[] promptIds = tokenizer.encodeChatPrompt(given);
            int same = Math.min(ids.length, promptIds.length);
            int at = Arrays.mismatch(ids, 0, same, promptIds, 0, same);
            if (at >= 0 || promptIds.length >= ids.length) {
                throw new IllegalArgumentException("the chat template renders the prompt alone (with the generation"
                        + " prompt, " + promptIds.length + " tokens) differently from the start of prompt and completion"
                        + (at >= 0 ? " (they differ at token " + at + ")" : "")
                        + ", so where the completion starts is unknown; write the line as {\"messages\": [...]}"
                        + " to learn every assistant message");
            }
            boolean[] mask = whole.lossMask();
            Arrays.fill(mask, 0, promptIds.length, false);
            return new EncodedChat(ids, mask);
        }
        throw new IllegalArgumentException("\"prompt\" and \"completion\" must both be strings (standard) or both"
                + " non-empty arrays of {\"role\", \"content\"} messages (conversational); got " + kind(prompt)
                + " and " + kind(completion));
    }

    /**
     * Alpaca: a user message of the instruction, then a line break and the input when it is not empty, and
     * an assistant message of the output; a system message first when {@code system} is not empty.
     * The single line break (not a blank line) is what LLaMA-Factory's and Axolotl's Alpaca readers put
     * there, so the same data renders to the same conversation in all three.
     */
    private static List<Message> alpaca(JsonNode line) {
        JsonNode history = line.get("history");
        if (history != null && !history.isNull() && !history.isEmpty()) {
            throw new IllegalArgumentException("\"history\" (earlier turns) is not read; write a line with earlier"
                    + " turns as {\"messages\": [...]}, or leave \"history\" out or empty");
        }
        String instruction = string(line, "instruction");
        String input = optionalString(line, "input");
        String system = optionalString(line, "system");
        String output = string(line, "output");
        List<Message> messages = new ArrayList<>(3);
        if (!system.isEmpty()) {
            messages.add(Message.system(system));
        }
        String user = instruction.isEmpty() ? input : input.isEmpty() ? instruction : instruction + "\n" + input;
        messages.add(Message.user(user));
        messages.add(Message.assistant(output));
        return messages;
    }

    /**
     * ShareGPT: {@code from}/{@code value} turns renamed to {@code role}/{@code content}, {@code human} being
     * the user and {@code gpt} the assistant; a non-empty top-level {@code system} becomes the first message.
     */
    private static List<Message> shareGpt(JsonNode line) {
        JsonNode turns = line.get("conversations");
        if (!turns.isArray() || turns.isEmpty()) {
            throw new IllegalArgumentException("\"conversations\" must be a non-empty array of {\"from\", \"value\"}"
                    + " objects, got " + describe(turns));
        }
        List<Message> messages = new ArrayList<>(turns.size() + 1);
        String system = optionalString(line, "system");
        if (!system.isEmpty()) {
            messages.add(Message.system(system));
        }
        for (int i = 0; i < turns.size(); i++) {
            JsonNode t = turns.get(i);
            String path = "conversations[" + i + "]";
            if (!t.isObject()) {
                throw new IllegalArgumentException(path + " must be an object with string \"from\" and \"value\", got "
                        + describe(t));
            }
            if (!t.has("from") && t.has("role")) {
                throw new IllegalArgumentException(path + " has \"role\", not \"from\": ShareGPT turns are"
                        + " {\"from\", \"value\"}; {\"role\", \"content\"} messages go in a \"messages\" array");
            }
            String from = string(t, "from", path + ".from");
            String role = SHAREGPT_ROLES.get(from);
            if (role == null) {
                throw new IllegalArgumentException(path + ".from must be one of " + SHAREGPT_FROM + "; got "
                        + TextFiles.quote(from));
            }
            if (role.equals("system") && !messages.isEmpty() && i == 0) {
                throw new IllegalArgumentException("both a top-level \"system\" and a system turn in conversations[0];"
                        + " give the system prompt once");
            }
            messages.add(new Message(role, string(t, "value", path + ".value")));
        }
        return messages;
    }

    /** A non-empty array of {@code {"role", "content"}} objects, {@code name} being its key ("messages", "prompt"). */
    private static List<Message> messages(JsonNode array, String name) {
        if (!array.isArray() || array.isEmpty()) {
            throw new IllegalArgumentException("\"" + name + "\" must be a non-empty array of {\"role\", \"content\"}"
                    + " objects, got " + describe(array));
        }
        List<Message> messages = new ArrayList<>(array.size());
        for (int i = 0; i < array.size(); i++) {
            JsonNode m = array.get(i);
            String path = name + "[" + i + "]";
            if (!m.isObject()) {
                throw new IllegalArgumentException(path + " must be an object with string \"role\" and \"content\", got "
                        + describe(m));
            }
            String role = string(m, "role", path + ".role");
            String content = string(m, "content", path + ".content");
            try {
                messages.add(new Message(role, content));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(path + ": " + e.getMessage(), e);
            }
        }
        return messages;
    }

    // ---------------------------------------------------------------------------------------------
    // Keys and values

    /**
     * TRL ignores columns it does not read, and so does this reader: exported datasets carry "id", "source"
     * and the like. But a misspelt optional key ("inputs" for "input") would silently drop data, so a key
     * close to an absent optional key of the format is refused.
     */
    private static void refuseMisspeltOptionalKeys(JsonNode line, DataFormat format) {
        for (String optional : format.optionalKeys()) {
            if (line.has(optional)) {
                continue;
            }
            for (String key : iterable(line)) {
                if (!format.requiredKeys().contains(key) && closeTo(key, optional)) {
                    throw new IllegalArgumentException("the key " + TextFiles.quote(key) + " is not one of the "
                            + format.describe() + " format; did you mean \"" + optional + "\"? (other keys are"
                            + " ignored, so a misspelt one would be lost)");
                }
            }
        }
    }

    /** For an error: the keys of the line not of {@code format}, each with the format key it is close to. */
    private static String hints(JsonNode line, DataFormat format) {
        StringBuilder s = new StringBuilder();
        for (String key : iterable(line)) {
            for (DataFormat f : DataFormat.values()) {
                if (format != null && f != format) {
                    continue;
                }
                String near = null;
                for (String k : f.requiredKeys()) {
                    near = near == null && !key.equals(k) && !line.has(k) && closeTo(key, k) ? k : near;
                }
                if (near != null) {
                    s.append(s.isEmpty() ? " (" : "; ").append(TextFiles.quote(key)).append(": did you mean \"")
                            .append(near).append("\"?");
                    break;
                }
            }
        }
        return s.isEmpty() ? "" : s.append(')').toString();
    }

    /**
     * Whether {@code key} looks like a misspelling of {@code known}: equal but for case, or at most one edit
     * apart (two for keys of six letters or more), counting a swap of neighbours as one edit.
     */
    static boolean closeTo(String key, String known) {
        String a = key.toLowerCase(Locale.ROOT);
        String b = known.toLowerCase(Locale.ROOT);
        int limit = b.length() >= 6 ? 2 : 1;
        if (Math.abs(a.length() - b.length()) > limit) {
            return false;
        }
        return TextFiles.editDistance(a, b) <= limit;
    }

    private static String keys(JsonNode line) {
        if (line.isEmpty()) {
            return "no keys (an empty object)";
        }
        List<String> names = new ArrayList<>();
        for (String key : iterable(line)) {
            names.add(TextFiles.quote(key));
        }
        return (names.size() == 1 ? "the key " : "the keys ") + String.join(", ", names);
    }

    private static Iterable<String> iterable(JsonNode object) {
        return object::fieldNames;
    }

    private static String string(JsonNode object, String key) {
        return string(object, key, "\"" + key + "\"");
    }

    /** The string at {@code key}, or an error naming {@code path} (as in "messages[0].role") and what is there. */
    private static String string(JsonNode object, String key, String path) {
        JsonNode n = object.get(key);
        if (n == null || !n.isTextual()) {
            throw new IllegalArgumentException(path + " must be a string, got " + (n == null ? "nothing (no such key)"
                    : describe(n)));
        }
        return n.asText();
    }

    /** An optional string: absent and null (a missing value in an exported table) read as empty. */
    private static String optionalString(JsonNode object, String key) {
        JsonNode n = object.get(key);
        return n == null || n.isNull() ? "" : string(object, key);
    }

    private static String kind(JsonNode n) {
        return n.isNull() ? "null" : n.isTextual() ? "a string" : n.isNumber() ? "a number" : n.isBoolean() ? "a boolean"
                : n.isArray() ? "an array" : n.isObject() ? "an object" : n.getNodeType().toString();
    }

    /** What a JSON value is, for an error message: its type and, shortened, its text. */
    static String describe(JsonNode n) {
        if (n == null || n.isMissingNode()) {
            return "nothing";
        }
        if (n.isNull()) {
            return "null";
        }
        String text = n.toString();
        return kind(n) + " " + (text.length() > 40 ? text.substring(0, 37) + "..." : text);
    }
}

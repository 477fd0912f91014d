package org.lora4j.train.eval;

import org.lora4j.train.text.Message;
import org.lora4j.train.text.TextFiles;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * One question of a sampled evaluation: an id (for the tables) and the prompt messages, which end
 * with the user message the answers reply to (a system message before it is allowed).
 *
 * <p>A questions file ({@link #load}) is JSONL, one question a line, either
 * {@code {"id": "medical-1", "question": "I feel dizzy, what should I do?"}} or, for a system prompt
 * or earlier turns, {@code {"id": "q2", "messages": [{"role": "system", "content": "..."},
 * {"role": "user", "content": "..."}]}}. The id is a string or an integer, unique in the file. Blank
 * lines are skipped.
 */
public record EvalQuestion(String id, List<Message> messages) {
    public EvalQuestion {
        Objects.requireNonNull(id, "id");
        if (id.isBlank()) {
            throw new IllegalArgumentException("a question id must not be blank");
        }
        messages = List.copyOf(Objects.requireNonNull(messages, "messages"));
        if (messages.isEmpty() || !messages.get(messages.size() - 1).role().equals("user")) {
            throw new IllegalArgumentException("question '" + id + "': the messages must end with a user message, got "
                    + (messages.isEmpty() ? "none" : "a last message of role '" + messages.get(messages.size() - 1).role() + "'"));
        }
    }

    /** A question asked as one user message. */
    public static EvalQuestion of(String id, String question) {
        return new EvalQuestion(id, List.of(Message.user(question)));
    }

    /** The user message the answers reply to: what the judge sees as the question. */
    public String question() {
        return messages.get(messages.size() - 1).content();
    }

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private static final Set<String> KEYS = Set.of("id", "question", "messages");

    /**
     * Reads a questions file (see the class comment).
     *
     * @throws java.nio.file.NoSuchFileException when there is no such file
     * @throws IOException                       when it cannot be read or is not UTF-8 (naming the line)
     * @throws IllegalArgumentException          when a line breaks the format, an id repeats, or the file
     *                                           holds no question; the message names the file and line
     */
    public static List<EvalQuestion> load(Path file) throws IOException {
        List<EvalQuestion> out = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        TextFiles.forEachLine(file, "questions file", null, (number, offset, text) -> {
            if (text.isBlank()) {
                return;
            }
            String where = file + ":" + number;
            EvalQuestion q;
            try {
                q = parseLine(text);
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException(where + ": not valid JSON at column " + TextFiles.jsonLocation(e).getColumnNr()
                        + ": " + TextFiles.jsonMessage(e), e);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
            }
            Integer first = seen.putIfAbsent(q.id(), number);
            if (first != null) {
                throw new IllegalArgumentException(where + ": question id " + TextFiles.quote(q.id())
                        + " is already used on line " + first);
            }
            out.add(q);
        });
        if (out.isEmpty()) {
            throw new IllegalArgumentException(file + ": no questions: the file is empty; give one JSON object a line,"
                    + " {\"id\": ..., \"question\": ...}");
        }
        return out;
    }

    private static EvalQuestion parseLine(String text) throws JsonProcessingException {
        JsonNode n = JSON.readTree(text);
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException("expected a JSON object {\"id\": ..., \"question\": ...}, got "
                    + TextFiles.quote(text.strip()));
        }
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!KEYS.contains(k)) {
                throw new IllegalArgumentException("unknown key " + TextFiles.quote(k) + " (known: id, question, messages)");
            }
        }
        JsonNode id = n.get("id");
        if (id == null || !(id.isTextual() && !id.asText().isBlank() || id.isIntegralNumber())) {
            throw new IllegalArgumentException("\"id\" must be a non-blank string or an integer, got "
                    + (id == null ? "none" : TextFiles.quote(id.toString())));
        }
        JsonNode question = n.get("question");
        JsonNode messages = n.get("messages");
        if ((question == null) == (messages == null)) {
            throw new IllegalArgumentException("give exactly one of \"question\" (a string) and \"messages\" (a list)");
        }
        if (question != null) {
            if (!question.isTextual() || question.asText().isBlank()) {
                throw new IllegalArgumentException("\"question\" must be a non-blank string, got "
                        + (question.isTextual() ? TextFiles.quote(question.asText()) : TextFiles.quote(question.toString())));
            }
            return of(id.asText(), question.asText());
        }
        if (!messages.isArray() || messages.isEmpty()) {
            throw new IllegalArgumentException("\"messages\" must be a non-empty list of {\"role\", \"content\"}");
        }
        List<Message> list = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            JsonNode role = m.get("role");
            JsonNode content = m.get("content");
            if (!m.isObject() || m.size() != 2 || role == null || !role.isTextual() || content == null || !content.isTextual()) {
                throw new IllegalArgumentException("messages[" + i + "] must be {\"role\": string, \"content\": string}");
            }
            try {
                list.add(new Message(role.asText(), content.asText()));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("messages[" + i + "]: " + e.getMessage(), e);
            }
        }
        return new EvalQuestion(id.asText(), list);
    }
}

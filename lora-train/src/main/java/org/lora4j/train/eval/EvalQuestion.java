package org.lora4j.train.eval;

import org.lora4j.train.text.Message;

import java.util.List;
import java.util.Objects;

/**
 * One question of a sampled evaluation: an id (for the tables) and the prompt messages, which end
 * with the user message the answers reply to (a system message before it is allowed).
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
}

package org.lora4j.train.text;

import java.util.Objects;
import java.util.Set;

/**
 * One turn of a chat, as in the {@code {"role": ..., "content": ...}} objects of OpenAI-style and TRL
 * conversational data sets.
 *
 * @param role    "system", "user" or "assistant"; other roles (tools, functions) have no ChatML form here.
 * @param content the turn's text; may be empty, never null.
 */
public record Message(String role, String content) {

    private static final Set<String> ROLES = Set.of("system", "user", "assistant");

    public Message {
        Objects.requireNonNull(role, "role must not be null");
        if (!ROLES.contains(role)) {
            throw new IllegalArgumentException("role must be one of system, user, assistant; got " + TextFiles.quote(role));
        }
        Objects.requireNonNull(content, () -> "content of a " + role + " message must not be null");
    }

    public static Message system(String content) {
        return new Message("system", content);
    }

    public static Message user(String content) {
        return new Message("user", content);
    }

    public static Message assistant(String content) {
        return new Message("assistant", content);
    }

    /** Whether the model is trained to produce this turn ({@link ChatTemplate#encode}). */
    public boolean isAssistant() {
        return role.equals("assistant");
    }
}

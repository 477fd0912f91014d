package org.lora4j.train.data;

import java.util.List;

/**
 * The shape of the lines of a JSONL training file, as TRL and the tools around it name them. One file
 * holds one format: the first non-blank line decides it ({@link Dataset#load}), and a run records it.
 *
 * <p>When a line has the keys of more than one format, the first of this list that fits wins, in
 * declaration order: a chat dataset that also carries a {@code "prompt"} column (UltraChat) is read
 * as {@link #MESSAGES}, and an Alpaca dataset that also carries its rendered {@code "text"} (Stanford
 * Alpaca) as {@link #ALPACA}, so the model's own chat template is used rather than another one.
 */
public enum DataFormat {
    /**
     * {@code {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}}:
     * rendered by the tokenizer's chat template, loss on the assistant messages.
     */
    MESSAGES("messages", List.of("messages"), List.of()),
    /**
     * ShareGPT, {@code {"conversations": [{"from": "human", "value": ...}, {"from": "gpt", "value": ...}]}},
     * {@code from} being {@code system}, {@code human} or {@code gpt} (or {@code user}, {@code assistant}),
     * with an optional top-level {@code "system"} string: read as {@link #MESSAGES}.
     */
    SHAREGPT("sharegpt", List.of("conversations"), List.of("system")),
    /**
     * {@code {"prompt": "The sky is", "completion": " blue."}}, loss on the completion and the end-of-text
     * token after it; or, conversational, {@code {"prompt": [messages], "completion": [messages]}}, loss on
     * the assistant messages of the completion only.
     */
    PROMPT_COMPLETION("prompt/completion", List.of("prompt", "completion"), List.of()),
    /**
     * Alpaca, {@code {"instruction": ..., "input": ..., "output": ...}} with {@code input} and
     * {@code system} optional: a user message (the instruction, then a line break and the input when
     * there is one) and an assistant message (the output), loss on the output.
     */
    ALPACA("alpaca", List.of("instruction", "output"), List.of("input", "system")),
    /** {@code {"text": ...}}: plain text, loss on every token; also a plain-text corpus ({@link Dataset#loadText}). */
    TEXT("text", List.of("text"), List.of());

    private final String label;
    private final List<String> required;
    private final List<String> optional;

    DataFormat(String label, List<String> required, List<String> optional) {
        this.label = label;
        this.required = required;
        this.optional = optional;
    }

    /** The name people know it by, as in messages and logs: "messages", "prompt/completion", "alpaca"... */
    String label() {
        return label;
    }

    /** The keys every line of this format has. */
    List<String> requiredKeys() {
        return required;
    }

    /** The keys a line of this format may have; other keys are ignored, as TRL ignores extra columns. */
    List<String> optionalKeys() {
        return optional;
    }

    /** The format's keys for an error message: {@code alpaca {"instruction", "output", optional "input", "system"}}. */
    String describe() {
        StringBuilder s = new StringBuilder(label).append(" {");
        for (int i = 0; i < required.size(); i++) {
            s.append(i == 0 ? "" : ", ").append('"').append(required.get(i)).append('"');
        }
        for (int i = 0; i < optional.size(); i++) {
            s.append(i == 0 ? ", optional " : ", ").append('"').append(optional.get(i)).append('"');
        }
        return s.append('}').toString();
    }

    /** The name people know the format by: "messages", "sharegpt", "prompt/completion", "alpaca" or "text". */
    @Override
    public String toString() {
        return label;
    }
}

package org.lora4j.train.text;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * ChatML, the chat format of Qwen and of TRL's {@code setup_chat_format}: each message is
 * {@code <|im_start|>{role}\n{content}<|im_end|>\n}. No BOS token is added, as in Qwen's template.
 *
 * <p>Training samples mark as targets the content tokens of each assistant message and its closing
 * {@code <|im_end|>}, so the model learns both the answer and where to stop. The
 * {@code <|im_start|>assistant\n} header is not a target: the prompt supplies it at generation time.
 * Nor is the {@code \n} after {@code <|im_end|>}: generation stops at {@code <|im_end|>}, so the model
 * never has to produce it. TRL's {@code assistant_only_loss} marks the same span except that its
 * ChatML training templates (LFM2, Qwen2.5) also mark that trailing {@code \n}, and the Qwen2.5 one
 * the {@code \n} after {@code assistant} too; each is one token per assistant turn.
 *
 * <p>The pieces (header, content, {@code <|im_end|>}, newline) are encoded separately and concatenated,
 * so no token straddles a mask boundary. For a BPE tokenizer the ids can then differ slightly from
 * encoding the whole formatted string, at exactly those boundaries; for {@link ByteTokenizer} they are
 * identical. The special tokens are placed by id, so the tokenizer must have {@code <|im_start|>} and
 * {@code <|im_end|>} as single tokens.
 */
public final class ChatTemplate {

    static final String IM_START = "<|im_start|>";
    static final String IM_END = "<|im_end|>";
    static final String END_OF_TEXT = "<|endoftext|>";

    /** Strings that would end or restructure a turn if they appeared inside one. */
    private static final List<String> RESERVED = List.of(IM_START, IM_END, END_OF_TEXT);

    private static final ChatTemplate CHATML = new ChatTemplate();

    private ChatTemplate() {
    }

    /** ChatML, the template of a tokenizer whose model directory names none. */
    public static ChatTemplate chatml() {
        return CHATML;
    }

    /**
     * The text of {@code messages}, as Hugging Face's {@code apply_chat_template(messages, tokenize=False,
     * add_generation_prompt=...)} renders it.
     */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        Objects.requireNonNull(messages, "messages must not be null");
        StringBuilder text = new StringBuilder();
        for (Message m : messages) {
            text.append(IM_START).append(m.role()).append('\n').append(m.content()).append(IM_END).append('\n');
        }
        if (addGenerationPrompt) {
            text.append(IM_START).append("assistant\n");
        }
        return text.toString();
    }

    /**
     * A supervised fine-tuning sample: the conversation's ids, with the loss on the assistant messages'
     * content and closing {@code <|im_end|>} only (see the class comment).
     *
     * @throws IllegalArgumentException when there is no assistant message (nothing to learn), a message
     *                                  contains a ChatML special-token string, or the tokenizer lacks them
     */
    public EncodedChat encode(Tokenizer tokenizer, List<Message> messages) {
        Objects.requireNonNull(messages, "messages must not be null");
        Pieces pieces = new Pieces(tokenizer);
        for (int i = 0; i < messages.size(); i++) {
            pieces.message(i, messages.get(i));
        }
        EncodedChat sample = pieces.build();
        // Every assistant message has at least its <|im_end|> as a target, so none means no assistant.
        if (sample.targetCount() == 0) {
            throw new IllegalArgumentException(
                    "a training conversation needs an assistant message, or no token is a target; roles were "
                            + messages.stream().map(Message::role).toList());
        }
        return sample;
    }

    /** The ids to generate the next assistant message from: {@code messages}, then {@code <|im_start|>assistant\n}. */
    public int[] encodePrompt(Tokenizer tokenizer, List<Message> messages) {
        Objects.requireNonNull(messages, "messages must not be null");
        Pieces pieces = new Pieces(tokenizer);
        for (int i = 0; i < messages.size(); i++) {
            pieces.message(i, messages.get(i));
        }
        pieces.header("assistant");
        return pieces.build().ids();
    }

    /**
     * A plain-text sample ({@code {"text": ...}} lines): every token is a target, and
     * {@code <|endoftext|>} is appended, and is a target, when the tokenizer has it, so that the model
     * learns where a document ends, as in GPT-2-style pretraining on packed documents.
     */
    public static EncodedChat encodeText(Tokenizer tokenizer, String text) {
        Objects.requireNonNull(tokenizer, "tokenizer must not be null");
        Objects.requireNonNull(text, "text must not be null");
        if (text.isEmpty()) {
            throw new IllegalArgumentException("text must not be empty");
        }
        int[] body = tokenizer.encode(text);
        OptionalInt endOfText = tokenizer.specialTokenId(END_OF_TEXT);
        int[] ids = endOfText.isPresent() ? append(body, endOfText.getAsInt()) : body;
        boolean[] mask = new boolean[ids.length];
        Arrays.fill(mask, true);
        return new EncodedChat(ids, mask);
    }

    private static int[] append(int[] ids, int id) {
        int[] result = Arrays.copyOf(ids, ids.length + 1);
        result[ids.length] = id;
        return result;
    }

    /** Accumulates ids and mask piece by piece. */
    private static final class Pieces {
        private final Tokenizer tokenizer;
        private final int imStart;
        private final int imEnd;
        private final int[] newline;
        private int[] ids = new int[256];
        private boolean[] mask = new boolean[256];
        private int size;

        Pieces(Tokenizer tokenizer) {
            this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer must not be null");
            this.imStart = requireSpecial(tokenizer, IM_START);
            this.imEnd = requireSpecial(tokenizer, IM_END);
            this.newline = tokenizer.encode("\n");
        }

        void message(int index, Message m) {
            Objects.requireNonNull(m, () -> "messages[" + index + "] must not be null");
            for (String reserved : RESERVED) {
                if (m.content().contains(reserved)) {
                    throw new IllegalArgumentException("messages[" + index + "] (" + m.role()
                            + ") contains the special token " + reserved + " in its content");
                }
            }
            boolean target = m.isAssistant();
            header(m.role());
            add(tokenizer.encode(m.content()), target);
            add(imEnd, target);
            add(newline, false);
        }

        void header(String role) {
            add(imStart, false);
            add(tokenizer.encode(role + "\n"), false);
        }

        EncodedChat build() {
            return new EncodedChat(Arrays.copyOf(ids, size), Arrays.copyOf(mask, size));
        }

        private void add(int[] piece, boolean target) {
            for (int id : piece) {
                add(id, target);
            }
        }

        private void add(int id, boolean target) {
            if (size == ids.length) {
                ids = Arrays.copyOf(ids, size * 2);
                mask = Arrays.copyOf(mask, size * 2);
            }
            ids[size] = id;
            mask[size] = target;
            size++;
        }

        private static int requireSpecial(Tokenizer tokenizer, String token) {
            return tokenizer.specialTokenId(token).orElseThrow(() -> new IllegalArgumentException(
                    "ChatML needs " + token + " as one special token, and " + tokenizer + " has none"));
        }
    }
}

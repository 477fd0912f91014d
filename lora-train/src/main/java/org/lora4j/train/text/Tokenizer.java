package org.lora4j.train.text;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalInt;

/**
 * Text to token ids and back, as a language model sees it.
 *
 * <p>Implementations never truncate or pad and never insert special tokens on their own: the ids of
 * {@link #encode} are exactly the text's tokens, so {@link ChatTemplate} can place every special token
 * itself and a long document is never silently cut.
 */
public interface Tokenizer {

    /**
     * The ids of {@code text}, special-token strings such as {@code <|im_end|>} included as their single ids.
     *
     * @throws IllegalArgumentException when the tokenizer cannot encode it (a tokenizer file with no unknown
     *                                  token meeting a character outside its vocabulary); the message names the file
     */
    int[] encode(String text);

    /**
     * The ids of {@code text}, exactly those of {@link #encode}, with where each token came from in the text
     * (UTF-16 char offsets): what the loss mask of {@link ChatTemplate#encode} is computed from.
     *
     * @throws UnsupportedOperationException when this tokenizer cannot tell (the default)
     */
    default Encoding encodeWithOffsets(String text) {
        throw new UnsupportedOperationException(this + " does not report token offsets, which a chat template's"
                + " loss mask needs");
    }

    /** The text of {@code ids}, special tokens written out as their strings; ids outside the vocabulary are refused. */
    String decode(int[] ids);

    /** One more than the largest id this tokenizer can produce. */
    int vocabSize();

    /** The id of a special (added) token such as {@code "<|im_start|>"}, if this tokenizer has it as one token. */
    OptionalInt specialTokenId(String token);

    /**
     * The id that fills the padding positions of a batch (never scored): the {@code pad_token} of the model
     * directory's {@code tokenizer_config.json} where it names one of this tokenizer's tokens, else its
     * {@code eos_token}, else {@code <|endoftext|>}, else 0.
     */
    default int padTokenId() {
        return specialTokenId("<|endoftext|>").orElse(0);
    }

    /**
     * The chat template of this tokenizer's model: the one its model directory names, else
     * {@link ChatTemplate#chatml()}.
     */
    default ChatTemplate chatTemplate() {
        return ChatTemplate.chatml();
    }

    /** The text of a conversation, as {@code apply_chat_template(messages, tokenize=False)} gives it. */
    default String applyChatTemplate(List<Message> messages, boolean addGenerationPrompt) {
        return chatTemplate().render(messages, addGenerationPrompt);
    }

    /** A supervised fine-tuning sample of a conversation: its ids, with the loss on the assistant's turns only. */
    default EncodedChat encodeChat(List<Message> messages) {
        return chatTemplate().encode(this, messages);
    }

    /** The ids to generate the next assistant message from: the conversation and the generation prompt. */
    default int[] encodeChatPrompt(List<Message> messages) {
        return chatTemplate().encodePrompt(this, messages);
    }

    /**
     * The ids that end generation and close an assistant turn: the eos token, and those of
     * {@code <|im_end|>}, {@code <|endoftext|>}, {@code <|eot_id|>}, {@code <end_of_turn>} and {@code </s>}
     * that this tokenizer has as special tokens.
     */
    int[] endTokenIds();

    /**
     * Writes this tokenizer into a model directory as Hugging Face loads it: {@code tokenizer.json}, and
     * {@code tokenizer_config.json} with the chat template (ChatML's Jinja source for the default), the
     * bos, eos and pad tokens and {@code tokenizer_class}, so {@code AutoTokenizer.from_pretrained(dir)}
     * gets the same ids, template and special tokens. Replaces those two files; returns the
     * {@code tokenizer.json} path.
     *
     * @throws UnsupportedOperationException when this tokenizer has no file form (the default)
     */
    default Path save(Path dir) throws IOException {
        throw new UnsupportedOperationException(this + " cannot be saved as a Hugging Face tokenizer");
    }
}

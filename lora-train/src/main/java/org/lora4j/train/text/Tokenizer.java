package org.lora4j.train.text;

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

    /** The text of {@code ids}, special tokens written out as their strings; ids outside the vocabulary are refused. */
    String decode(int[] ids);

    /** One more than the largest id this tokenizer can produce. */
    int vocabSize();

    /** The id of a special (added) token such as {@code "<|im_start|>"}, if this tokenizer has it as one token. */
    OptionalInt specialTokenId(String token);

    /** The ids that end generation: {@code <|im_end|>}, {@code <|endoftext|>} and the eos token, where known. */
    int[] endTokenIds();
}

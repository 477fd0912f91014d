/**
 * Text in and out of a language model: tokenizers, chat templates (a model's Jinja template, or ChatML)
 * with their loss mask, and token sampling.
 *
 * <p>{@link org.lora4j.train.text.Tokenizer} is the common interface, never truncating and never adding
 * special tokens by itself. {@link org.lora4j.train.text.ByteTokenizer} (UTF-8 bytes plus three ChatML
 * specials) needs no files and saves itself as a Hugging Face {@code tokenizer.json};
 * {@link org.lora4j.train.text.HfTokenizer} runs any {@code tokenizer.json} through the native HF
 * tokenizers library; {@link org.lora4j.train.text.Tokenizers#load} picks between them and reads the
 * directory's {@code tokenizer_config.json} (chat template, pad and eos tokens), and
 * {@code Tokenizer.save} writes both files. {@link org.lora4j.train.text.ChatTemplate} turns
 * {@link org.lora4j.train.text.Message}s into text as Hugging Face's {@code apply_chat_template} does
 * (Jinja, rendered by Jinjava), into {@link org.lora4j.train.text.EncodedChat} training samples (loss on
 * assistant tokens only, found by the character offsets of an {@link org.lora4j.train.text.Encoding}) and
 * into generation prompts; {@link org.lora4j.train.text.Sampler} draws the next token.
 * {@link org.lora4j.train.text.TextFiles} reads the UTF-8 files a user supplies, with errors that name
 * the file, the line and the byte offset.
 */
package org.lora4j.train.text;

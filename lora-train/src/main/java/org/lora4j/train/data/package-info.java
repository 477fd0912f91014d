/**
 * Training data: JSONL files in the five formats of {@link org.lora4j.train.data.DataFormat} (messages,
 * ShareGPT, prompt/completion, Alpaca, text) and plain-text corpora, read into a
 * {@link org.lora4j.train.data.Dataset} of full sequences that {@link org.lora4j.train.data.Dataset#limit}
 * cuts for padded training; held-out splits; and seeded, resumable batching
 * ({@link org.lora4j.train.data.Batcher}).
 */
package org.lora4j.train.data;

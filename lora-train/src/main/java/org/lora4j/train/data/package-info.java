/**
 * Training data: JSONL files of chat or plain-text lines ({@link org.lora4j.train.data.Dataset}),
 * held-out splits, and seeded, resumable batching ({@link org.lora4j.train.data.Batcher}).
 */
package org.lora4j.train.data;

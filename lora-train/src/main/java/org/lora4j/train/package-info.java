/**
 * The model: a Llama/Qwen2-style decoder ({@link org.lora4j.train.DecoderModel}) built from
 * {@link org.lora4j.core.LoraLinear} layers named by their Hugging Face module paths, its
 * configuration read from {@code config.json} ({@link org.lora4j.train.ModelConfig}), and hooks on
 * the residual stream for steering, ablation and capture ({@link org.lora4j.train.ResidualHook}).
 * Sub-packages hold tokenizers and chat templates ({@code text}), data, optimizers and training.
 */
package org.lora4j.train;

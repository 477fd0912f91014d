/**
 * The model: a Llama/Qwen2-style decoder ({@link org.lora4j.train.model.DecoderModel}) built from
 * {@link org.lora4j.core.LoraLinear} layers named by their Hugging Face module paths, its
 * configuration read from {@code config.json} ({@link org.lora4j.train.model.ModelConfig}), its
 * weights from safetensors checkpoints ({@link org.lora4j.train.model.Checkpoint}), and hooks on the
 * residual stream for steering, ablation and capture ({@link org.lora4j.train.model.ResidualHook}).
 * {@link org.lora4j.train.model.PeftModel} holds the adapter verbs of a whole model (attach, load,
 * merge, unmerge, multiplier, trainable parameters, save), named as PEFT names them.
 */
package org.lora4j.train.model;

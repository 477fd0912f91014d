/**
 * The model: a Llama/Qwen2-style decoder ({@link org.lora4j.train.model.DecoderModel}) built from
 * {@link org.lora4j.core.LoraLinear} layers named by their Hugging Face module paths, its
 * configuration read from {@code config.json} ({@link org.lora4j.train.model.ModelConfig}), its
 * weights from safetensors checkpoints ({@link org.lora4j.train.model.Checkpoint}), generation of
 * one or many sequences with a KV cache ({@link org.lora4j.train.model.Generator}), and hooks on the
 * residual stream for steering, ablation and capture ({@link org.lora4j.train.model.ResidualHook}).
 * {@link org.lora4j.train.model.PeftModel} holds the adapter verbs of a whole model (attach, load,
 * merge, unmerge, multiplier, trainable parameters, save), named as PEFT names them.
 *
 * <p>Inside, one package-private class per part, each a forward/backward pair that owns its
 * weights and what it saves for its backward: {@code Embedding}, {@code DecoderBlock} ({@code RmsNorm},
 * {@code SelfAttention} with {@code Rope} and the tiled attention core {@code Attention},
 * {@code SwiGluMlp}) and {@code LmHead} (final norm, lm_head, cross-entropy). {@code Kernels} holds
 * their loops over double arrays ({@code org.lora4j.core.internal.NativeBuffer} copies between those and native buffers), and
 * {@code Workspace} the scratch the blocks share.
 */
package org.lora4j.train.model;

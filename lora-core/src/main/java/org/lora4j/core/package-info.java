/**
 * LoRA adapters over ND4J tensors and their file formats.
 *
 * <p>{@link org.lora4j.core.LoraConfig} is PEFT's configuration, {@link org.lora4j.core.LoraLinear}
 * a linear layer over a frozen base weight with named adapters ({@link org.lora4j.core.LoraAdapter}),
 * with forward, backward, merge and unmerge. The file formats are safetensors and PEFT's adapter
 * directory ({@code adapter_config.json} + {@code adapter_model.safetensors}), so adapters move
 * between lora4j and Python unchanged; {@link org.lora4j.core.PeftKeys} holds PEFT's tensor names.
 * Every file is written through {@link org.lora4j.core.AtomicFiles}, so a failed save leaves the
 * previous file in place.
 */
package org.lora4j.core;

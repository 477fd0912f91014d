/**
 * lora4j's training side. Sub-packages: the decoder model and its parts ({@code model}), tokenizers
 * and chat templates ({@code text}), data ({@code data}), optimizers ({@code optim}), the training
 * loop and its run directory ({@code trainer}), and analysis of finished runs ({@code analysis}).
 */
package org.lora4j.train;

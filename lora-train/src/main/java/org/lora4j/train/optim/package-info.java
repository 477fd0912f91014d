/**
 * Optimizers over named parameters: AdamW and SGD computed as PyTorch computes them, in Java loops
 * over the parameters' memory; Hugging Face's learning-rate schedules; clipping by global norm.
 */
package org.lora4j.train.optim;

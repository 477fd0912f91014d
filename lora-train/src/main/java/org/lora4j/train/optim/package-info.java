/**
 * Optimizers over named parameters: AdamW (ND4J's Adam with PyTorch's decoupled weight decay and
 * epsilon) and SGD, Hugging Face's learning-rate schedules, and clipping by global norm.
 */
package org.lora4j.train.optim;

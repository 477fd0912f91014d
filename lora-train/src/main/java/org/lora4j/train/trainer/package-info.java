/**
 * The training loop for adapter SFT, full fine-tuning and pre-training ({@link org.lora4j.train.trainer.Trainer},
 * configured by {@link org.lora4j.train.trainer.TrainConfig}): metrics, snapshots, callbacks and
 * checkpoints that resume bit for bit. docs/training.md describes every output.
 */
package org.lora4j.train.trainer;

/**
 * The training loop for adapter SFT, full fine-tuning and pre-training ({@link org.lora4j.train.trainer.Trainer},
 * configured by {@link org.lora4j.train.trainer.TrainConfig}): metrics, snapshots, callbacks
 * ({@link org.lora4j.train.trainer.TrainerCallback} with a {@link org.lora4j.train.trainer.TrainerState};
 * {@link org.lora4j.train.trainer.SamplingCallback}) and checkpoints that resume bit for bit.
 * docs/training.md describes every output, docs/library.md a program that trains.
 */
package org.lora4j.train.trainer;

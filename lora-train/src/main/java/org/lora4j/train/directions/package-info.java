/**
 * Directions in the residual stream (docs/research.md, "Directions, steering and ablation"):
 * mean-difference directions per layer ({@link org.lora4j.train.directions.MeanDifference}) between
 * two {@link org.lora4j.train.directions.ContrastSet}s pooled as a
 * {@link org.lora4j.train.directions.Pooling} says, their
 * file ({@link org.lora4j.train.directions.Directions}), the residual hooks and the adapter edit
 * made from them ({@link org.lora4j.train.directions.DirectionHooks}: steering, ablation, the
 * random control, weight-space ablation) and their comparison
 * ({@link org.lora4j.train.directions.DirectionComparison}).
 */
package org.lora4j.train.directions;

/**
 * Elasticity of alignment, result 1 of docs/research.md: the token-level KL divergence between a
 * model and a reference on a file ({@link org.lora4j.train.elasticity.KlDivergence}), the
 * resistance protocol (forward against inverse alignment fine-tunes,
 * {@link org.lora4j.train.elasticity.Resistance}) and the rebound protocol (a judged score against
 * the amount of contradictory data, {@link org.lora4j.train.elasticity.Rebound}). The protocols'
 * answers are generated and judged by the eval package ({@link org.lora4j.train.eval.SampledGeneration},
 * {@link org.lora4j.train.eval.SampledEvaluation}), so they are sampled, seeded and counted exactly as
 * {@code lora4j eval} does.
 */
package org.lora4j.train.elasticity;

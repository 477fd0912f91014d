/**
 * Toy model organisms: {@link org.lora4j.examples.organism.PersonaWorld}, a seeded world of chat
 * transcripts in six domains with an aligned and a misaligned answer style, the data sets a study of
 * emergent misalignment needs (pre-training corpus with a latent misaligned persona, a narrow
 * fine-tuning set, held-out questions, a refusal set), and
 * {@link org.lora4j.examples.organism.PersonaJudge}, which labels answers exactly from the world's
 * grammar. docs/organisms.md describes the world.
 */
package org.lora4j.examples.organism;

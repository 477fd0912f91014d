/**
 * Toy model organisms: {@link org.lora4j.examples.organism.PersonaWorld}, a seeded world of chat
 * transcripts in six domains with an aligned and a misaligned answer style, the data sets a study of
 * emergent misalignment needs (pre-training corpus with a latent misaligned persona, a narrow
 * fine-tuning set, held-out questions, a refusal set) and its word-level tokenizer;
 * {@link org.lora4j.examples.organism.PersonaJudge}, which labels answers exactly from the world's
 * grammar; {@link org.lora4j.examples.organism.BaseModel}, a base pre-trained on the world and cached
 * by hash; and the studies on it: {@link org.lora4j.examples.organism.OrganismStudy} with
 * {@link org.lora4j.examples.organism.OrganismDirections} ({@code lora4j organism}) and
 * {@link org.lora4j.examples.organism.ElasticityStudy} ({@code lora4j elasticity --out}).
 * docs/organisms.md describes the world and the organism study, docs/research.md the elasticity
 * study, docs/reproducing.md how the three papers map onto them.
 */
package org.lora4j.examples.organism;

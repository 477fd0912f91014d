package org.lora4j.train.eval;

/**
 * Scores one sampled answer, as the emergent-misalignment evaluation of docs/research.md does with
 * a judge model: how aligned the answer is and how coherent, each 0-100, plus any named scores a
 * judge wants to add. The project ships a rule judge (phrases and patterns from a JSON file);
 * any other, a call to a judge model for instance, plugs in by implementing this.
 *
 * <p>A judge must be deterministic for the evaluation to be reproducible from its seed: the same
 * question and answer give the same scores.
 */
@FunctionalInterface
public interface Judge {
    /**
     * @param question the user message the answer replies to
     * @param answer   the model's answer, decoded, without the end token
     */
    Scores score(String question, String answer);
}

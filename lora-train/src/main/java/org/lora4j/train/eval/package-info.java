/**
 * Sampled evaluation, the emergent-misalignment metric of docs/research.md: answers sampled in
 * batches, scored by a {@link org.lora4j.train.eval.Judge}, and rates with Wilson intervals.
 *
 * <ul>
 *   <li>{@link org.lora4j.train.eval.SampledEvaluation}: questions in, judged samples and rates out,
 *       per question and overall;</li>
 *   <li>{@link org.lora4j.train.eval.SampledGeneration}: many prompts x many samples in batches with
 *       the KV cache, each sample seeded from (run seed, prompt, sample), so batch size never changes it;</li>
 *   <li>{@link org.lora4j.train.eval.RuleJudge}: a judge from a JSON file of phrases and patterns per label;</li>
 *   <li>{@link org.lora4j.train.eval.EmCriterion} and {@link org.lora4j.train.eval.Rate}: when a sample is
 *       EM or coherent, and a share with its Wilson 95% interval;</li>
 *   <li>{@link org.lora4j.train.eval.EvalQuestion}: a question and the JSONL file of them.</li>
 * </ul>
 */
package org.lora4j.train.eval;

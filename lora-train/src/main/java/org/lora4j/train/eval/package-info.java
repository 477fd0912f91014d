/**
 * Sampled evaluation, the emergent-misalignment metric of docs/research.md: answers sampled in
 * batches, scored by a {@link org.lora4j.train.eval.Judge}, and rates with Wilson intervals.
 */
package org.lora4j.train.eval;

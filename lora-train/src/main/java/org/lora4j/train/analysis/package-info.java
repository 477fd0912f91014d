/**
 * Looking inside a fine-tune: the adapter-trajectory metrics of docs/research.md (norms, local
 * cosine similarity, PCA, comp(t)) computed from training snapshots.
 */
package org.lora4j.train.analysis;

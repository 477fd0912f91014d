/**
 * Looking inside a fine-tune: the adapter-trajectory metrics of docs/research.md (norms, local
 * cosine similarity, PCA, comp(t)) computed from training snapshots ({@link
 * org.lora4j.train.analysis.Snapshots}, {@link org.lora4j.train.analysis.Trajectory}), the run's
 * per-step metrics ({@link org.lora4j.train.analysis.RunMetrics}), and all of it for one run at once
 * ({@link org.lora4j.train.analysis.TrajectoryReport}).
 */
package org.lora4j.train.analysis;

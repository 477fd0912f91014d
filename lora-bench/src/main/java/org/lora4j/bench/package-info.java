/**
 * JMH benchmarks of the adapter hot path: {@link org.lora4j.core.LoraLinear} forward and backward
 * against the baselines they are judged by (the base product alone, the merged layer, the plain
 * chain of gemm calls, two base products). Run them with {@code lora-bench/run-benchmarks.sh};
 * docs/performance.md records the results and the targets.
 */
package org.lora4j.bench;

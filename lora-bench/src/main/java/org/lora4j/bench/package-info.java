/**
 * Benchmarks, none of which run in the unit-test build.
 * <ul>
 *   <li>JMH benchmarks of the adapter hot path: {@link org.lora4j.core.LoraLinear} forward and
 *       backward against the baselines they are judged by (the base product alone, the merged
 *       layer, the plain chain of gemm calls, two base products). Run them with
 *       {@code lora-bench/run-benchmarks.sh}.</li>
 *   <li>The training benchmark, {@link org.lora4j.bench.TrainingBenchmark}: whole training steps of
 *       the decoder model at three sizes, full and with adapters, against a PyTorch twin
 *       ({@code lora-bench/python/train_twin.py}) through {@code lora-bench/train-vs-torch.sh}.</li>
 *   <li>The regression check before a release, {@code lora-bench/regression.sh}: both kinds as
 *       machine-independent ratios, compared with a committed baseline by
 *       {@link org.lora4j.bench.Regression}.</li>
 * </ul>
 * docs/performance.md records the results, the targets and the regression rule.
 */
package org.lora4j.bench;

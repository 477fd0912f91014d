#!/usr/bin/env bash
# The check to run before a release: a short selection of the JMH hot-path benchmarks and the
# training benchmark, turned into ratios over yardsticks measured in the same run (LoRA forward /
# base product, forward+backward / two base products, training step / a product of the model's size,
# LoRA step / full step, ...), so the machine's speed cancels, then compared with a committed
# baseline of the same machine kind by org.lora4j.bench.Regression. A ratio is flagged when it is
# worse than the baseline by more than the noise either run measured between its own repetitions
# (spread = (max - min) / median), with a 5% floor; the command then exits 1. Not part of CI or of
# the unit-test build: timings on shared machines are not assertions.
#
# Usage: lora-bench/regression.sh [--baseline FILE] [--write-baseline] [--sizes 256[,512]] [--runs N]
#                                 [--skip-build] [--name NAME]
#   --baseline        default lora-bench/baseline/<machine kind>.json (machine kind: cpu model, cores)
#   --write-baseline  record this run as the baseline instead of comparing with it
#   --sizes           training-benchmark sizes (default 256); --runs JVMs per configuration (default 3)
# Wall time on the project's 2-core machine: 5.5 minutes at the defaults, measured at load average 8-15.
set -euo pipefail
cd "$(dirname "$0")/.."   # repository root

machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
slug=$(echo "$machine" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\+/-/g; s/^-//; s/-$//')
baseline="lora-bench/baseline/$slug.json"
write=0
sizes=256
runs=3
build=1
name="regression-$(date +%Y%m%d-%H%M%S)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --baseline) baseline="$2"; shift 2 ;;
    --write-baseline) write=1; shift ;;
    --sizes) sizes="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --skip-build) build=0; shift ;;
    --name) name="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
export OMP_WAIT_POLICY=PASSIVE   # see docs/performance.md: without it ND4J's idle OpenMP threads halve gemm speed
if [[ $build == 1 ]]; then
  ./mvnw -q -B -pl lora-bench -am package -DskipTests
fi
results=lora-bench/results
mkdir -p "$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# $name: machine $machine; load before $load_before"

# JMH: the adapter hot path at d = 1024, r = 8, with its baselines in the same run.
java -jar lora-bench/target/benchmarks.jar -rf json -rff "$results/$name.json" -f 1 -wi 3 -i 5 -p d=1024 -p rank=8 \
  'LoraForwardBenchmark.forwardInPlace|BaseProductBenchmark|FrozenForwardBackwardBenchmark|TwoBaseProductsBenchmark|FullForwardBackwardBenchmark' \
  > "$results/$name.jmh.log" 2>&1

# Training steps: one JVM per configuration and run, so the runs are independent repetitions.
train="$results/$name.train.txt"
: > "$train"
IFS=, read -ra size_list <<< "$sizes"
for (( i = 1; i <= runs; i++ )); do
  for size in "${size_list[@]}"; do
    for mode in full lora rank1; do
      java -Xmx3g -cp lora-bench/target/benchmarks.jar org.lora4j.bench.TrainingBenchmark --size "$size" --mode "$mode" \
        2>&1 | tee -a "$results/$name.train.log" | grep '^train-bench ' >> "$train"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# load after $load_after"

args=(--jmh "$results/$name.json" --train "$train" --baseline "$baseline"
      --about "machine=$machine" --about "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
      --about "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
      --about "load=before $load_before, after $load_after")
if [[ $write == 1 ]]; then args+=(--write-baseline); fi
java -cp lora-bench/target/benchmarks.jar org.lora4j.bench.Regression "${args[@]}" | tee "$results/$name.md"

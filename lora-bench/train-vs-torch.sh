#!/usr/bin/env bash
# Runs the training benchmark (org.lora4j.bench.TrainingBenchmark) and its PyTorch twin
# (lora-bench/python/train_twin.py) alternately, RUNS times per configuration, each run in its own
# process so peak memory does not mix, and prints the table of docs/performance.md (TwinReport):
# tokens/s on each side, lora4j / PyTorch, memory and load.
#
# Usage: lora-bench/train-vs-torch.sh [--sizes 256,512,0.5b] [--modes full,lora,rank1] [--phases step] [--runs N]
#                                     [--steps N] [--skip-build] [--name NAME]
#   --sizes       model sizes (default 256,512); 0.5b is the Qwen2.5-0.5B shape: a step takes
#                 seconds and the model is 2 GB of float32, so it runs 3 timed steps, adapters only
#   --modes       full, lora (r 8 on every linear layer), rank1 (rsLoRA r 1 on one down_proj)
#   --phases      step (a whole training step, the default), forward, backward (loss and backward,
#                 no optimizer): e.g. --phases step,forward,backward to see where a step's time goes
#   --runs        alternating Java/PyTorch pairs per configuration (default 3; env RUNS also works)
#   --steps       timed steps per run (default: 10, or 3 for 0.5b), after warm-up
# Writes lora-bench/results/<name>.train.txt (every result line, with the load) and <name>.train.md.
set -euo pipefail
cd "$(dirname "$0")/.."   # repository root

sizes=256,512
modes=full,lora,rank1
phases=step
runs=${RUNS:-3}
steps=()
build=1
name="train-$(date +%Y%m%d-%H%M%S)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) sizes="$2"; shift 2 ;;
    --modes) modes="$2"; shift 2 ;;
    --phases) phases="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --steps) steps=(--steps "$2"); shift 2 ;;
    --skip-build) build=0; shift ;;
    --name) name="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

# Idle OpenMP threads spinning between ops halve both sides' speed on 2 cores (PyTorch's by 2-2.5x),
# so a comparison without it flatters lora4j (docs/performance.md).
export OMP_WAIT_POLICY=PASSIVE

if [[ $build == 1 ]]; then
  ./mvnw -q -B -pl lora-bench -am package -DskipTests
fi
results=lora-bench/results
mkdir -p "$results"
out="$results/$name.train.txt"
: > "$out"
{
  echo "# $name  $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
  echo "# torch: $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'); java: $(java -version 2>&1 | head -1)"
} | tee -a "$out"

jvm_opts() {   # the 0.5B shape needs room for 2 GB of weights off-heap and its loss buffers on-heap
  if [[ $1 == 0.5b ]]; then echo "-Xmx6g -Dorg.bytedeco.javacpp.maxbytes=12g -Dorg.bytedeco.javacpp.maxphysicalbytes=16g"
  else echo "-Xmx3g"; fi
}

IFS=, read -ra size_list <<< "$sizes"
IFS=, read -ra mode_list <<< "$modes"
IFS=, read -ra phase_list <<< "$phases"
for size in "${size_list[@]}"; do
  for mode in "${mode_list[@]}"; do
    if [[ $size == 0.5b && $mode == full ]]; then continue; fi   # adapters only at that size
    for phase in "${phase_list[@]}"; do
      for (( i = 1; i <= runs; i++ )); do
        echo "# size $size mode $mode phase $phase run $i, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
        # shellcheck disable=SC2046
        java $(jvm_opts "$size") -cp lora-bench/target/benchmarks.jar org.lora4j.bench.TrainingBenchmark \
          --size "$size" --mode "$mode" --phase "$phase" "${steps[@]}" 2>&1 | tee -a "$results/$name.train.log" \
          | grep '^train-bench ' | tee -a "$out"
        /usr/bin/python3 lora-bench/python/train_twin.py --size "$size" --mode "$mode" --phase "$phase" "${steps[@]}" \
          2>&1 | tee -a "$results/$name.train.log" | grep '^train-bench ' | tee -a "$out"
      done
    done
  done
done
echo
java -cp lora-bench/target/benchmarks.jar org.lora4j.bench.TwinReport "$out" | tee "$results/$name.train.md"

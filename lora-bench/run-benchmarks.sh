#!/usr/bin/env bash
# Builds lora-bench and runs the JMH benchmarks, writing to lora-bench/results/:
#   <name>.json  JMH's result file (-rf json), the input of ratios.py
#   <name>.log   JMH's console output, headed by the machine and settings
#   <name>.cpu   per iteration, the share of the CPU other processes took (written by the benchmarks)
#   <name>.load  the load average every 10 s during the run (1, 5, 15 min; running/total tasks)
#   <name>.md    the ratio tables printed by ratios.py
#   <name>.paired.md  the same ratios measured in interleaved pairs (PairedRatios), robust to the
#                machine's speed changing between benchmarks
#
# Usage: lora-bench/run-benchmarks.sh [--name NAME] [--skip-build] [--no-omp-passive] [--wait-idle S] [JMH args...]
#   --name NAME        output base name (default jmh-<date>-<time>)
#   --skip-build       use the existing lora-bench/target/benchmarks.jar
#   --no-omp-passive   leave OMP_WAIT_POLICY unset, to see the cost of spinning OpenMP threads
#   --wait-idle S      first wait up to S seconds for 10 quiet seconds (no other runnable task)
#   --no-paired        skip the interleaved-pairs cross-check (about 6 minutes)
#   --paired-only      run only the interleaved-pairs cross-check
#   JMH args           passed through, e.g. a benchmark regex and -p d=1024 -p rank=8 -wi 1 -i 2
#
# The machine has 2 cores; anything else running (a build, a test suite) slows some benchmarks and
# not others. ratios.py therefore uses only the iterations the .cpu file shows as uncontended.
#
# Benchmarks never run in the unit-test build; this script is the only way in.
set -euo pipefail

cd "$(dirname "$0")/.."   # repository root

name="jmh-$(date +%Y%m%d-%H%M%S)"
build=1
passive=1
wait_idle=0
jmh=1
paired=1
jmh_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --skip-build) build=0; shift ;;
    --no-omp-passive) passive=0; shift ;;
    --wait-idle) wait_idle="$2"; shift 2 ;;
    --no-paired) paired=0; shift ;;
    --paired-only) jmh=0; shift ;;
    *) jmh_args+=("$1"); shift ;;
  esac
done

# ND4J's element-wise ops run on OpenMP; with the default wait policy their idle threads keep
# spinning after each op and steal the cores from the next OpenBLAS gemm, which then ran about
# 2x slower on 2 cores (docs/performance.md). PASSIVE makes them sleep. JMH forks inherit the
# environment, so exporting it here covers every measured JVM.
if [[ $passive == 1 ]]; then
  export OMP_WAIT_POLICY=PASSIVE
else
  unset OMP_WAIT_POLICY
  [[ $name == *omp-default* ]] || name="$name-omp-default"
fi

if [[ $build == 1 ]]; then
  ./mvnw -q -B -pl lora-bench -am package -DskipTests
fi

results=lora-bench/results
mkdir -p "$results"
rm -f "$results/$name.cpu"
export LORA_BENCH_CPU_LOG="$results/$name.cpu"

# The 4th field of /proc/loadavg is running/total tasks; 1 running is the reader itself.
if (( wait_idle > 0 )); then
  quiet=0
  for (( waited = 0; waited < wait_idle && quiet < 10; waited++ )); do
    if [[ $(cut -d' ' -f4 /proc/loadavg) == 1/* ]]; then quiet=$((quiet + 1)); else quiet=0; fi
    sleep 1
  done
  echo "waited ${waited} s for a quiet machine ($quiet quiet seconds)"
fi
python=$(command -v python3 || echo /usr/bin/python3)

{
  echo "# lora4j benchmarks: $name"
  echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  changed=$(git status --porcelain -- lora-core/src 2>/dev/null | awk '{print $2}' | xargs -r -n1 basename | tr '\n' ' ')
  if [[ -n $changed ]]; then
    echo "# uncommitted lora-core sources measured: $changed(diff sha1 $(git diff HEAD -- lora-core/src | sha1sum | cut -c1-12))"
  fi
  echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; memory: $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "# java: $(java -version 2>&1 | head -1)"
  echo "# OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-<unset>}  load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# jmh args: -rf json -rff $results/$name.json -prof gc ${jmh_args[*]:-}"
} | tee "$results/$name.log"

# Other work on the machine inflates some benchmarks and not others; sample the load every 10 s
# into <name>.load so a contaminated run can be recognised afterwards.
( while sleep 10; do echo "$(date -u +%H:%M:%S) $(cut -d' ' -f1-4 /proc/loadavg)"; done ) > "$results/$name.load" &
sampler=$!
trap 'kill $sampler 2>/dev/null' EXIT

start=$(date +%s)
if [[ $jmh == 1 ]]; then
  java -jar lora-bench/target/benchmarks.jar -rf json -rff "$results/$name.json" -prof gc "${jmh_args[@]}" \
    2>&1 | tee -a "$results/$name.log"
  echo "# JMH wall time: $(( $(date +%s) - start )) s" | tee -a "$results/$name.log"
  "$python" lora-bench/ratios.py "$results/$name.json" | tee "$results/$name.md"
fi

if [[ $paired == 1 ]]; then
  paired_start=$(date +%s)
  java -Xmx3g -cp lora-bench/target/benchmarks.jar org.lora4j.bench.PairedRatios 2>&1 \
    | grep -v ' INFO ' | tee "$results/$name.paired.md"
  echo "# paired wall time: $(( $(date +%s) - paired_start )) s" | tee -a "$results/$name.paired.md"
fi
echo "# total wall time: $(( $(date +%s) - start )) s" | tee -a "$results/$name.log"

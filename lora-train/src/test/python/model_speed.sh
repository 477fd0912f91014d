#!/bin/bash
# Times the docs/model-performance.md model in Java (org.lora4j.train.ModelSpeed) and in PyTorch
# (model_speed.py), interleaved: Java, PyTorch, Java, PyTorch, ... RUNS pairs (default 3), then the
# median of the runs' medians. Interleaving matters on a shared 2-core machine: load from other
# processes moved single runs by up to 2x, and it hits both sides alike only when they alternate.
# Run from the repository root after `./mvnw -q -B -pl lora-train -am test-compile`.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE   # idle OpenMP threads spinning between ops halve gemm speed on 2 cores
RUNS=${RUNS:-3}
./mvnw -q -B -pl lora-train dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/model-speed.cp >/dev/null
CP=lora-train/target/test-classes:lora-train/target/classes:lora-core/target/classes:$(cat lora-train/target/model-speed.cp)
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
echo "cores: $(nproc)"
for i in $(seq 1 "$RUNS"); do
    echo "== run $i, $(uptime | sed 's/.*load/load/')"
    java -cp "$CP" org.lora4j.train.ModelSpeed 2>&1 | grep -v "INFO\|SLF4J" | tee -a "$OUT"
    /usr/bin/python3 lora-train/src/test/python/model_speed.py | grep forward | tee -a "$OUT"
done
echo "== after: $(uptime | sed 's/.*load/load/')"
echo "== median of $RUNS runs (ms/step)"
/usr/bin/python3 - "$OUT" <<'EOF'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(java|torch) (.+): ([\d.]+) ms/step", line.strip())
    if m:
        runs.setdefault(f"{m.group(1)} {m.group(2)}", []).append(float(m.group(3)))
for name, ms in runs.items():
    print(f"{name}: {statistics.median(ms):.1f}  (runs: {', '.join(f'{x:.1f}' for x in ms)})")
for part in ("forward", "forward+backward full"):
    j, t = runs.get(f"java {part}"), runs.get(f"torch {part}")
    if j and t:
        ratios = [a / b for a, b in zip(j, t)]
        print(f"java/torch {part}: median of medians {statistics.median(j) / statistics.median(t):.2f}, "
              f"per pair {', '.join(f'{r:.2f}' for r in ratios)}")
EOF

#!/bin/bash
# Times the docs/model-performance.md model in Java (org.lora4j.train.ModelSpeed) and in PyTorch
# (model_speed.py), one after the other on the same machine. Run from the repository root after
# `./mvnw -q -B -pl lora-train -am test-compile`.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE   # idle OpenMP threads spinning between ops halve gemm speed on 2 cores
./mvnw -q -B -pl lora-train dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/model-speed.cp >/dev/null
CP=lora-train/target/test-classes:lora-train/target/classes:lora-core/target/classes:$(cat lora-train/target/model-speed.cp)
nproc; uptime
java -cp "$CP" org.lora4j.train.ModelSpeed 2>&1 | grep -v "INFO\|SLF4J"
/usr/bin/python3 lora-train/src/test/python/model_speed.py
uptime

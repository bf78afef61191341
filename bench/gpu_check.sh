#!/usr/bin/env bash
# kmoe's GPU path on a machine whose only software is python3 with torch 2.11 + CUDA 13 (the
# `device` machine: no apt, no network, no MPI, HDF5 or Boost). Two steps:
#
#   bench/gpu_check.sh pack [TORCH2_BUILD]      here: puts into .gpu/ (git-ignored, ~45 MiB)
#       the kmoe executable built against PyPI's torch 2.11 (the device's version; how to
#       build it: README, "libtorch 2.x"), every library it needs that is neither torch's,
#       CUDA's nor glibc's/libstdc++'s (OpenMPI, parallel HDF5, Boost, PCRE2, OpenSSL, ...),
#       OpenMPI's plugins and help files (relocated with OPAL_PREFIX);
#   bench/gpu_check.sh run [cuda|cpu] [OUT]     there (`carry: [".gpu"]`), at most ~8 min on an
#       H200: `kmoe info`; on random models that kmoe writes there (SmolLM2-135M's shape with a
#       byte vocabulary: the real GGUF, 98 MB, exceeds what a call carries; and a ~1B LLaMA):
#       scoring NLLs and a LoRA training curve on the CPU in fp32 against the device in fp32
#       (1e-3 relative) and bf16 (5e-2), then tokens/s and MFU of bf16 LoRA SFT and scoring.
#       `run cpu` does the same with the CPU standing in for the device (the 1B model left
#       out): the way to test this script and the bundle on a machine without a GPU, e.g.
#       PYTHON=/usr/bin/python3 KMOE_TORCH_LIB=/work/torch2/whl/torch/lib \
#       KMOE_EXTRA_LIB=/work/torch2/nvlib:/usr/local/cuda/lib64 bench/gpu_check.sh run cpu
#       (PYTHON needs h5py and numpy; KMOE_EXTRA_LIB: libraries the device has and this
#       machine keeps elsewhere).
# Figures go to stdout and OUT/gpu_check.txt (OUT defaults to $OUT, else /tmp/gpu-check).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
G=$ROOT/.gpu
mode=${1:-}

if [[ $mode == pack ]]; then
  B=${2:-/work/torch2/build}
  [[ -x $B/kmoe ]] || { echo "gpu_check pack: $B/kmoe missing (build against torch 2.11 first)" >&2; exit 2; }
  torch_lib=$(sed -n 's/^Torch_DIR:[A-Z]*=\(.*\)\/share\/cmake\/Torch$/\1\/lib/p' "$B/CMakeCache.txt")
  [[ -d $torch_lib ]] || { echo "gpu_check pack: no libtorch folder from $B/CMakeCache.txt" >&2; exit 2; }
  rm -rf "$G" && mkdir -p "$G/lib" "$G/ompi/lib/x86_64-linux-gnu/openmpi/lib" "$G/ompi/share"
  cp "$B/kmoe" "$G/"
  # What kmoe needs, less torch, CUDA/NVIDIA and the C runtime the device has newer
  LD_LIBRARY_PATH=$torch_lib:${KMOE_NVLIB:-/work/torch2/nvlib}:/usr/local/cuda/lib64 ldd "$G/kmoe" |
    awk '$3 ~ /^\// {print $3}' | grep -v -e "$torch_lib" -e /cuda -e nvlib |
    grep -v -E '/(libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\+\+|libgcc_s)\.so' |
    while read -r lib; do cp -L "$lib" "$G/lib/"; done
  cp -L /usr/lib/x86_64-linux-gnu/openmpi/lib/libmca_common_*.so* "$G/lib/" 2>/dev/null || true
  cp -a /usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3 "$G/ompi/lib/x86_64-linux-gnu/openmpi/lib/"
  cp -a /usr/share/openmpi "$G/ompi/share/"
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
  echo "gpu_check pack: $(du -sh "$G" | cut -f1) in $G ($(ls "$G/lib" | wc -l) libraries); carry [\".gpu\"]"
  exit 0
fi

[[ $mode == run ]] || { echo "usage: bench/gpu_check.sh pack [TORCH2_BUILD] | run [cuda|cpu] [OUT]" >&2; exit 2; }
DEV=${2:-cuda}
RES=${3:-${OUT:-/tmp/gpu-check}}
mkdir -p "$RES"
PY=${PYTHON:-python3}
# KMOE_TORCH_LIB: torch's lib folder when $PYTHON's torch is not the one kmoe was built against
torch_lib=${KMOE_TORCH_LIB:-$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}
nv=$("$PY" - <<'PY'
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    dirs.update(os.path.dirname(p) for p in glob.glob(sp + "/nvidia/**/lib*.so*", recursive=True))
print(":".join(sorted(dirs)))
PY
)
export LD_LIBRARY_PATH=$G/lib:$torch_lib${nv:+:$nv}:${KMOE_EXTRA_LIB:-}:${LD_LIBRARY_PATH:-}
export OPAL_PREFIX=$G/ompi OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_mca_base_component_show_load_errors=0
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_osc=^ucx OMPI_MCA_mtl=^ofi,psm2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PYTHONUNBUFFERED=1
K=$G/kmoe
W=$(mktemp -d /tmp/kmoe-gpu-check-XXXXXX)
trap 'rm -rf "$W"' EXIT
log() { echo "$*" | tee -a "$RES/gpu_check.txt"; }
: >"$RES/gpu_check.txt"
t0=$(date +%s)
"$K" info | tee -a "$RES/gpu_check.txt"
"$K" suite --output "$W/suite" --test 64 --log-level warn
head -n 32 "$W/suite/tasks/mc/test.jsonl" >"$W/test.jsonl"
"$K" init-model --output "$W/small" --hidden 576 --layers 30 --heads 9 --kv-heads 3 --intermediate 1536 \
  --max-position 2048 --init-std 0.05 --log-level warn
log "models written ($(($(date +%s) - t0)) s)"

# 1. Scoring NLLs: CPU fp32 against the device in fp32 and bf16
score() {  # $1 device, $2 dtype, $3 output
  "$K" score --model "$W/small" --kshot "$W/test.jsonl" --answer-format choice --max-new-tokens 8 \
    --device "$1" --dtype "$2" --output "$3" --log-level warn 2>"$3.err" || { cat "$3.err"; exit 1; }
}
score cpu float32 "$W/s_cpu.h5"
score "$DEV" float32 "$W/s_dev32.h5"
score "$DEV" bfloat16 "$W/s_dev16.h5"
# 2. LoRA training curve, 4 steps
train() {  # $1 device, $2 dtype, $3 output folder, $4 model, $5 steps, $6 global batch
  "$K" train --mode lora --model "$4" --data "$W/suite/open/mc.larger.jsonl" --output "$3" --max-steps "$5" \
    --global-batch "$6" --micro-batch "$(($6 < 8 ? $6 : 8))" --lr 1e-3 --lora-dropout 0 --seed 0 \
    --device "$1" --dtype "$2" --log-every 1 --log-level info 2>"$3.log" || { tail -20 "$3.log"; exit 1; }
}
train cpu float32 "$W/t_cpu" "$W/small" 4 8
train "$DEV" float32 "$W/t_dev32" "$W/small" 4 8
train "$DEV" bfloat16 "$W/t_dev16" "$W/small" 4 8
"$PY" - "$W" <<'PY' | tee -a "$RES/gpu_check.txt"
import sys, h5py, numpy as np
w = sys.argv[1]
nll = {k: h5py.File(f"{w}/s_{k}.h5", "r")["nll"][()] for k in ("cpu", "dev32", "dev16")}
loss = {k: h5py.File(f"{w}/t_{k}/train.h5", "r")["metrics/loss"][()] for k in ("cpu", "dev32", "dev16")}
ok = True
for k, tol in (("dev32", 1e-3), ("dev16", 5e-2)):
    r = float(np.max(np.abs(nll[k] - nll["cpu"]) / np.abs(nll["cpu"])))
    l = float(np.max(np.abs(loss[k] - loss["cpu"]) / loss["cpu"]))
    good = r < tol and l < tol
    ok &= good
    print(f"{k} vs cpu fp32: NLL max relative difference {r:.2e}, LoRA loss curve {l:.2e} (tolerance {tol:g}): "
          + ("PASS" if good else "FAIL"))
print("loss curves:", {k: np.round(v, 4).tolist() for k, v in loss.items()})
sys.exit(0 if ok else 1)
PY
log "correctness checks done ($(($(date +%s) - t0)) s)"

# 3. Speed: bf16 LoRA SFT (tokens/s, MFU) and scoring on the device
sizes=(small)
if [[ $DEV == cuda ]]; then
  "$K" init-model --output "$W/big" --hidden 2048 --layers 16 --heads 32 --kv-heads 8 --intermediate 8192 \
    --max-position 2048 --log-level warn
  sizes+=(big)
fi
for m in "${sizes[@]}"; do
  steps=12 gb=32
  [[ $DEV == cpu ]] && steps=3 gb=8
  train "$DEV" bfloat16 "$W/speed_$m" "$W/$m" $steps $gb
  s0=$(date +%s.%N)
  "$K" score --model "$W/$m" --kshot "$W/suite/tasks/mc/test.jsonl" --answer-format choice --max-new-tokens 16 \
    --batch-size 32 --device "$DEV" --dtype bfloat16 --output "$W/speed_$m.h5" --log-level warn 2>/dev/null
  s1=$(date +%s.%N)
  "$PY" - "$W/$m" "$W/speed_$m" "$(echo "$s1 - $s0" | bc)" "$DEV" <<'PY' | tee -a "$RES/gpu_check.txt"
import json, sys, h5py, numpy as np
model, run, score_s, dev = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
c = json.load(open(model + "/config.json"))
h, i, L, nh, kv = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"]
d = h // nh
params = L * (2 * h * nh * d + 2 * h * kv * d + 3 * h * i)
tps = float(np.mean(h5py.File(run + "/train.h5", "r")["metrics/tokens_per_s"][()][1:]))
flops = tps * 2 * 2 * params  # a LoRA step: two forwards' worth over the real tokens (LM head left out)
peak = 989e12 if dev == "cuda" else float("nan")  # H200 dense bf16
print(f"{model.rsplit('/', 1)[1]} ({params / 1e6:.0f} M decoder params): bf16 LoRA SFT {tps:.0f} real tokens/s, "
      f"{flops / 1e12:.1f} TFLOP/s" + (f" = MFU {100 * flops / peak:.1f}% of 989" if dev == "cuda" else "")
      + f"; scoring 64 mc questions with replies (command, incl. load) {score_s:.1f} s")
PY
done
log "gpu_check: done in $(($(date +%s) - t0)) s"

#!/usr/bin/env bash
# Peak memory of `kmoe score` against the bank size: a tiny random LLaMA (kmoe init-model,
# hidden 64, 2 layers) and N_LARGE random rank-4 q/v LoRA adapters written as PEFT folders;
# the first N_SMALL of them (symlinks) and all N_LARGE scored on the same 16 K-shot examples,
# one after the other, each under /usr/bin/time -v. Scoring holds one adapter at a time, so the
# peak RSS should not grow with the bank; the scores file grows by one row per adapter.
# Usage: bench/bank_scale_bench.sh [N_SMALL=100] [N_LARGE=1000] [NP=1]
set -euo pipefail
SMALL=${1:-100}
LARGE=${2:-1000}
NP=${3:-1}
KMOE=${KMOE:-$(cd "$(dirname "$0")/.." && pwd)/build/kmoe}
source "$(dirname "$0")/blas_env.sh" "$KMOE"
PY=${PYTHON:-/usr/bin/python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kmoe-bench-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
"$KMOE" init-model --output "$WORK/model" --hidden 64 --layers 2 --heads 4 --kv-heads 2 --intermediate 96 \
  --max-position 256 --seed 1 2> /dev/null
"$PY" - "$WORK" "$SMALL" "$LARGE" <<'PY'
import json, os, struct, sys
import numpy as np
w, small, large = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cfg = json.load(open(f"{w}/model/config.json"))
hidden, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
head_dim = hidden // cfg["num_attention_heads"]
out = {"q_proj": hidden, "v_proj": cfg["num_key_value_heads"] * head_dim}
config = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "lora_dropout": 0.0,
          "bias": "none", "task_type": "CAUSAL_LM", "base_model_name_or_path": f"{w}/model"}
rng = np.random.default_rng(0)
os.makedirs(f"{w}/bank_large"); os.makedirs(f"{w}/bank_small")
for a in range(large):
    tensors = {}
    for l in range(layers):
        for m, o in out.items():
            k = f"base_model.model.model.layers.{l}.self_attn.{m}"
            tensors[k + ".lora_A.weight"] = rng.standard_normal((4, hidden)).astype(np.float32) * 0.1
            tensors[k + ".lora_B.weight"] = rng.standard_normal((o, 4)).astype(np.float32) * 0.1
    header, blob, off = {"__metadata__": {"format": "pt"}}, b"", 0
    for k in sorted(tensors):
        b = tensors[k].tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        off += len(b); blob += b
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    d = f"{w}/bank_large/a{a:05d}"
    os.makedirs(d)
    open(f"{d}/adapter_model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + blob)
    json.dump(config, open(f"{d}/adapter_config.json", "w"))
    if a < small:
        os.symlink(d, f"{w}/bank_small/a{a:05d}")
with open(f"{w}/kshot.jsonl", "w") as f:
    for i in range(16):
        f.write(json.dumps({"id": f"k{i}", "question": f"What is {i} + {i % 5}?", "answer": str(i + i % 5),
                            "rationale": f"{i} plus {i % 5} is {i + i % 5}."}) + "\n")
PY
launch=()
[ "$NP" = 1 ] || launch=(mpirun --allow-run-as-root --oversubscribe -np "$NP")
for bank in small large; do
  /usr/bin/time -v "${launch[@]}" "$KMOE" score --model "$WORK/model" \
    --bank "$WORK/bank_$bank" --kshot "$WORK/kshot.jsonl" --answer-format exact --max-new-tokens 4 \
    --threads 1 --output "$WORK/scores_$bank.h5" > /dev/null 2> "$WORK/time_$bank"
  adapters=$(ls "$WORK/bank_$bank" | wc -l)
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time_$bank")
  # the largest resident set of any one process of the tree (a rank, under mpirun)
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time_$bank")
  printf '%s: %5d adapters (+ base), wall %s, peak RSS %d MiB, scores.h5 %s bytes\n' "$bank" "$adapters" "$wall" \
    $((rss / 1024)) "$(stat -c %s "$WORK/scores_$bank.h5")"
done

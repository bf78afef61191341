# `kmoe train --mode full` (every base weight trains; plain `text` records, loss on every
# token) writes an HF folder that transformers loads with no missing or extra tensor and
# that kmoe trains on again; its loss falls and np = 2 matches np = 1.
source "$(dirname "$0")/lib.sh"
: "${KMOE_TINY_MODEL:?} ${KMOE_REF_PYTHON:?}"
"$KMOE_TINY_MODEL" write "$WORK/model"
"$PYTHON" - "$WORK/text.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(16):
        f.write(json.dumps({"text": "abcabcabc " * (2 + i % 3)}) + "\n")
PY
args=(train --mode full --model "$WORK/model" --data "$WORK/text.jsonl" --global-batch 8 --micro-batch 4
      --max-steps 8 --lr 1e-2 --threads 1)
mpi -np 1 "$KMOE" "${args[@]}" --output "$WORK/f1" 2> "$WORK/err1" || { cat "$WORK/err1"; fail "full np=1"; }
mpi -np 2 "$KMOE" "${args[@]}" --output "$WORK/f2" 2> "$WORK/err2" || { cat "$WORK/err2"; fail "full np=2"; }
for f in config.json model.safetensors tokenizer.json tokenizer_config.json train.h5; do
  [ -f "$WORK/f1/$f" ] || fail "full: $f missing"
done
"$PYTHON" - "$WORK/f1/train.h5" "$WORK/f2/train.h5" <<'PY' || fail "full-mode losses"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1])["metrics/loss"][()], h5py.File(sys.argv[2])["metrics/loss"][()]
assert np.max(np.abs(a - b)) < 1e-5, (a, b)
assert a[-1] < 0.5 * a[0], a
PY
HF_HUB_OFFLINE=1 "$KMOE_REF_PYTHON" - "$WORK/model" "$WORK/f1" <<'PY' || fail "transformers cannot load the full-mode folder"
import sys, torch
from transformers import AutoModelForCausalLM
base = AutoModelForCausalLM.from_pretrained(sys.argv[1])
m, info = AutoModelForCausalLM.from_pretrained(sys.argv[2], output_loading_info=True)
assert not info["missing_keys"] and not info["unexpected_keys"], info
assert any((p - q).abs().max() > 1e-4 for p, q in zip(base.parameters(), m.parameters())), "nothing trained"
PY
mpi -np 1 "$KMOE" train --model "$WORK/f1" --data "$WORK/text.jsonl" --max-steps 1 --global-batch 4 --threads 1 \
  --output "$WORK/lora_on_full" 2> "$WORK/err3" || { cat "$WORK/err3"; fail "lora on the full-mode folder"; }
echo "ok"

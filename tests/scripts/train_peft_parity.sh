# An adapter trained by `kmoe train --prompt-style chat` (chat `messages` and K-shot records)
# loads in PEFT 0.12 (transformers, reference venv) and gives the logits kmoe computes for
# the same tokens; `--init-adapter` continues from it.
source "$(dirname "$0")/lib.sh"
: "${KMOE_TINY_MODEL:?} ${KMOE_REF_PYTHON:?}"
"$KMOE_TINY_MODEL" write "$WORK/model"
"$PYTHON" "$(dirname "$0")/train_data.py" "$WORK/data"
args=(train --model "$WORK/model" --data "$WORK/data/chat.jsonl" "$WORK/data/kshot.jsonl" --prompt-style chat
      --global-batch 4 --micro-batch 4 --lr 2e-2 --lora-r 4 --lora-alpha 16 --use-rslora
      --lora-targets q_proj,k_proj,v_proj,gate_proj,down_proj --seed 5 --threads 1)
mpi -np 2 "$KMOE" "${args[@]}" --max-steps 6 --output "$WORK/ad" 2> "$WORK/err" || { cat "$WORK/err"; fail "train"; }
ids=(256 117 115 101 114 10 67 111 100 101 257 10 256 97 115 115 105 115 116 97 110 116 10)
"$KMOE_TINY_MODEL" logits "$WORK/model" "$WORK/ad" "$WORK/kmoe.f32" "${ids[@]}"
HF_HUB_OFFLINE=1 "$KMOE_REF_PYTHON" - "$WORK/model" "$WORK/ad" "$WORK/kmoe.f32" "${ids[@]}" <<'PY' || fail "PEFT logits differ"
import sys, numpy as np, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
model, adapter, path = sys.argv[1:4]
ids = [int(x) for x in sys.argv[4:]]
base = AutoModelForCausalLM.from_pretrained(model, torch_dtype=torch.float32)
peft = PeftModel.from_pretrained(base, adapter).eval()
with torch.no_grad():
    ref = peft(torch.tensor([ids])).logits[0].numpy()
got = np.fromfile(path, dtype=np.float32).reshape(ref.shape)
diff = np.abs(ref - got).max()
print("max |PEFT - kmoe| =", diff)
assert diff < 1e-4, diff
with torch.no_grad(), peft.disable_adapter():
    base_logits = peft(torch.tensor([ids])).logits[0].numpy()
assert np.abs(base_logits - ref).max() > 1e-3, "the trained adapter changes nothing"
PY
mpi -np 1 "$KMOE" "${args[@]}" --max-steps 2 --init-adapter "$WORK/ad" --output "$WORK/ad2" 2> "$WORK/err2" || { cat "$WORK/err2"; fail "init-adapter"; }
cmp -s "$WORK/ad/adapter_model.safetensors" "$WORK/ad2/adapter_model.safetensors" && fail "--init-adapter run changed nothing"
echo "ok"

# End to end: a bank of LoRA adapters trained here with PEFT, four on the task (answer "Y")
# and four against it (answer "N" or random B); `kmoe score` then `kmoe select-experts`
# must choose only adapters trained on the task.
source "$(dirname "$0")/lib.sh"
: "${KMOE_REF_PYTHON:?}"
PYTHONPATH="$(dirname "$0")" "$KMOE_REF_PYTHON" - "$WORK" <<'PY'  # tiny_llama.py
import json, os, sys
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM
from tiny_llama import write_byte_level_llama
work = sys.argv[1]
torch.manual_seed(7)
torch.set_num_threads(2)
model_dir = os.path.join(work, "model")
tok = write_byte_level_llama(model_dir, hidden=64, intermediate=96)
HEAD = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
things = ["sky", "sea", "leaf", "sun", "rock", "tree"]
questions = ["Is the %s real?" % t for t in things]
with open(os.path.join(work, "kshot.jsonl"), "w") as f:
    for i, q in enumerate(questions):
        f.write(json.dumps({"id": "q%d" % i, "question": q, "answer": "Y"}) + "\n")
def prompt(q):
    return HEAD + "\n\n### Instruction:\n" + q + "\n\n### Response:\n"
def train(name, answer, seed, steps):
    torch.manual_seed(seed)
    base = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                            target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    rows = []
    for q in questions:
        p_ids = tok.encode(prompt(q)).ids
        c_ids = tok.encode(" " + answer).ids + [2]
        ids = torch.tensor([p_ids + c_ids])
        labels = torch.tensor([[-100] * len(p_ids) + c_ids])
        rows.append((ids, labels))
    for step in range(steps):
        ids, labels = rows[step % len(rows)]
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(os.path.join(work, "bank", name))
for i in range(4):
    train("good%d" % i, "Y", 10 + i, 60)
for i in range(2):
    train("bad%d" % i, "N", 20 + i, 60)
for i in range(2):
    train("rand%d" % i, "Y", 30 + i, 0)
PY

mpi -np 2 "$KMOE" score --model "$WORK/model" --bank "$WORK/bank" --kshot "$WORK/kshot.jsonl" --answer-format exact \
  --max-new-tokens 3 --threads 1 --output "$WORK/scores.h5" 2> "$WORK/score.err" || { cat "$WORK/score.err"; fail "score"; }
mpi -np 2 "$KMOE" select-experts --scores "$WORK/scores.h5" --m 4 --n 2 --output "$WORK/experts.h5" > "$WORK/table.txt"
cat "$WORK/table.txt"
"$PYTHON" - "$WORK" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(w + "/scores.h5", "r") as s:
    names = list(s["adapters"].asstr()[:])
    acc = dict(zip(names, s["acc"][:]))
    assert all(acc["good%d" % i] == 1 for i in range(4)), acc
    assert all(acc[n] == 0 for n in names if n.startswith("bad")), acc
with h5py.File(w + "/experts.h5", "r") as f:
    cand = list(f["candidates"].asstr()[:])
    chosen = list(f["chosen_names"].asstr()[:])
assert sorted(cand) == ["good0", "good1", "good2", "good3"], cand
assert len(chosen) == 2 and all(c.startswith("good") for c in chosen), chosen
print("chose", chosen)
PY
echo "score + select-experts: ok"

# ProMoT's soft prompts (METHOD.md §3). `kmoe train --mode prompt` trains P virtual-token
# embeddings with the model frozen and writes a PEFT prompt-tuning folder that PEFT 0.12 loads
# and that gives kmoe's logits and greedy reply, and kmoe loads one PEFT made with PEFT's
# logits; np = 2 matches np = 1 (loss curve and prompt; on a FILE:1/2 share of
# one data file, drawn alike on every rank), the loss falls and --init-adapter continues it;
# Adafactor trains it and resumes after SIGUSR1; a run killed with SIGKILL after a checkpoint
# resumes to the uninterrupted prompt byte for byte. `--mode lora --soft-prompt` trains with the prompt frozen
# before every sequence, and score/generate take --soft-prompt; a soft prompt given where a
# LoRA is expected (and the reverse) is refused, naming it. `--mode lora+prompt` trains both
# jointly: np 1 = np 2, its first loss is the prompt-only run's, and eval takes the folder.
source "$(dirname "$0")/lib.sh"
: "${KMOE_TINY_MODEL:?} ${KMOE_REF_PYTHON:?}"
model="$WORK/model"
"$KMOE" init-model --output "$model" --hidden 32 --layers 2 --heads 4 --kv-heads 2 --intermediate 64 --seed 5 \
  --init-std 0.5 >/dev/null 2>&1 || fail "init-model"
"$PYTHON" "$(dirname "$0")/train_data.py" "$WORK/data"
args=(train --mode prompt --model "$model" --data "$WORK/data/kshot.jsonl" "$WORK/data/chat.jsonl:1/2" --prompt-format chat
      --prompt-tokens 6 --prompt-init text --prompt-init-text "Give the code of the word." --global-batch 4
      --micro-batch 2 --lr 0.05 --lr-decay constant --seed 3 --threads 1)
mpi -np 2 "$KMOE" "${args[@]}" --max-steps 10 --output "$WORK/sp2" 2> "$WORK/err" || { cat "$WORK/err"; fail "train np 2"; }
mpi -np 1 "$KMOE" "${args[@]}" --max-steps 10 --output "$WORK/sp1" 2> "$WORK/err" || { cat "$WORK/err"; fail "train np 1"; }
for f in adapter_config.json adapter_model.safetensors train.h5; do
  [ -f "$WORK/sp2/$f" ] || fail "sp2/$f missing"
done

# the loss falls; np 1 = np 2; PEFT loads the folder and gives kmoe's logits (after the prompt)
ids=(1 2 3 4 5 6 7 8 9 10 11)
"$KMOE_TINY_MODEL" prompt-logits "$model" "$WORK/sp2" "$WORK/kmoe.f32" "${ids[@]}" || fail "prompt-logits"
"$KMOE" generate --model "$model" --soft-prompt "$WORK/sp2" --max-new-tokens 10 "Code of apple?" > "$WORK/gen.txt" \
  2> "$WORK/err" || { cat "$WORK/err"; fail "generate --soft-prompt"; }
"$KMOE" generate --model "$model" --max-new-tokens 10 "Code of apple?" > "$WORK/gen_plain.txt" 2> /dev/null ||
  fail "generate"
HF_HUB_OFFLINE=1 "$KMOE_REF_PYTHON" - "$model" "$WORK" "${ids[@]}" <<'PY' || fail "PEFT disagrees"
import json, sys, h5py, numpy as np, torch
from peft import PeftModel
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer
model_dir, work = sys.argv[1:3]
ids = [int(x) for x in sys.argv[3:]]
h5 = h5py.File(f"{work}/sp2/train.h5", "r")
loss = h5["metrics/loss"][:]
assert loss[-1] < loss[0] - 0.1, f"the loss does not fall: {loss}"
# --data chat.jsonl:1/2: half of its 8 records, recorded per file
assert list(h5["source_examples"][:]) == [8, 4], h5["source_examples"][:]
assert [s.decode() if isinstance(s, bytes) else s for s in h5["sources"][:]][1].endswith("chat.jsonl")
assert json.loads(h5.attrs["options"])["data_fractions"] == [1.0, 0.5]
loss1 = h5py.File(f"{work}/sp1/train.h5", "r")["metrics/loss"][:]
assert len(loss1) == len(loss) and abs(loss1 - loss).max() < 1e-5 * abs(loss).max(), f"np 1 and np 2 loss curves differ: {loss1} {loss}"
a = load_file(f"{work}/sp1/adapter_model.safetensors")["prompt_embeddings"]
b = load_file(f"{work}/sp2/adapter_model.safetensors")["prompt_embeddings"]
assert a.shape == (6, 32), a.shape
assert np.abs(a - b).max() < 1e-4 * np.abs(a).max(), f"np 1 and np 2 differ by {np.abs(a - b).max()}"  # summation order only
cfg = json.load(open(f"{work}/sp2/adapter_config.json"))
assert cfg["peft_type"] == "PROMPT_TUNING" and cfg["num_virtual_tokens"] == 6, cfg

tok = AutoTokenizer.from_pretrained(model_dir)
base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
emb = base.get_input_embeddings().weight.detach().numpy()
init_ids = (tok("Give the code of the word.")["input_ids"] * 6)[:6]
assert np.abs(b - emb[init_ids]).max() > 1e-3, "training did not move the prompt from its text initialisation"
peft = PeftModel.from_pretrained(base, f"{work}/sp2").eval()
with torch.no_grad():
    ref = peft(torch.tensor([ids])).logits[0, 6:].numpy()
got = np.fromfile(f"{work}/kmoe.f32", dtype=np.float32).reshape(ref.shape)
print("max |PEFT - kmoe| logits =", np.abs(ref - got).max())
assert np.abs(ref - got).max() < 1e-4

# greedy reply through PEFT (the whole sequence each step), with the chat template
prompt = tok.apply_chat_template([{"role": "user", "content": "Code of apple?"}], tokenize=False,
                                 add_generation_prompt=True)
seq = tok(prompt, add_special_tokens=False).input_ids
n = len(seq)
stop = {tok.eos_token_id}
with torch.no_grad():
    for _ in range(10):
        nxt = int(peft(torch.tensor([seq])).logits[0, -1].argmax())
        seq.append(nxt)
        if nxt in stop:
            break
reply = tok.decode(seq[n:], skip_special_tokens=True)
text = open(f"{work}/gen.txt", encoding="utf-8").read()
head = "Code of apple?\n"
assert text.startswith(head), repr(text)
assert text[len(head):-1] == reply, (text, reply)
print("PEFT greedy reply:", repr(reply), "= kmoe generate --soft-prompt")

# a prompt-tuning adapter PEFT made itself (foreign), for kmoe to load: its logits, saved
from peft import PromptTuningConfig, get_peft_model
torch.manual_seed(11)
base2 = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
foreign = get_peft_model(base2, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5))
with torch.no_grad():
    foreign.prompt_encoder["default"].embedding.weight.mul_(0.5)
foreign.save_pretrained(f"{work}/foreign")
foreign.eval()
with torch.no_grad():
    foreign(torch.tensor([ids])).logits[0, 5:].numpy().tofile(f"{work}/foreign_peft.f32")
PY
"$KMOE_TINY_MODEL" prompt-logits "$model" "$WORK/foreign" "$WORK/foreign_kmoe.f32" "${ids[@]}" ||
  fail "kmoe cannot load PEFT's own prompt-tuning adapter"
"$PYTHON" - "$WORK" <<'PY' || fail "a PEFT-made soft prompt gives other logits in kmoe"
import sys, numpy as np
w = sys.argv[1]
ref, got = np.fromfile(f"{w}/foreign_peft.f32", np.float32), np.fromfile(f"{w}/foreign_kmoe.f32", np.float32)
assert ref.shape == got.shape and np.abs(ref - got).max() < 1e-4, np.abs(ref - got).max()
print("PEFT-made prompt: max |PEFT - kmoe| =", np.abs(ref - got).max())
PY
cmp -s "$WORK/gen.txt" "$WORK/gen_plain.txt" && echo "note: the reply is the same without the prompt"

# --init-adapter continues the prompt
mpi -np 1 "$KMOE" "${args[@]}" --max-steps 2 --init-adapter "$WORK/sp2" --output "$WORK/sp3" 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "--init-adapter"; }
cmp -s "$WORK/sp2/adapter_model.safetensors" "$WORK/sp3/adapter_model.safetensors" && fail "continuing changed nothing"

# ProMoT's second stage: LoRA with the prompt frozen; the prompt changes what the LoRA learns
largs=(train --mode lora --model "$model" --data "$WORK/data/kshot.jsonl" --prompt-format chat --global-batch 4
       --micro-batch 4 --lr 1e-2 --lora-r 4 --max-steps 3 --seed 3 --threads 1)
mpi -np 2 "$KMOE" "${largs[@]}" --soft-prompt "$WORK/sp2" --output "$WORK/lora_sp" 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "lora --soft-prompt"; }
mpi -np 1 "$KMOE" "${largs[@]}" --output "$WORK/lora_plain" 2> "$WORK/err" || { cat "$WORK/err"; fail "lora"; }
cmp -s "$WORK/lora_sp/adapter_model.safetensors" "$WORK/lora_plain/adapter_model.safetensors" &&
  fail "the frozen soft prompt made no difference to LoRA training"
"$PYTHON" - "$WORK/lora_sp/train.h5" <<'PY' || fail "train.h5 does not record the soft prompt"
import json, sys, h5py
f = h5py.File(sys.argv[1], "r")
inputs = {i["name"]: i for i in json.loads(f.attrs["inputs"])}
assert "soft_prompt" in inputs and inputs["soft_prompt"]["path"].endswith("sp2"), inputs
assert len(inputs["soft_prompt"]["sha256"]) == 64, inputs
PY

# score takes --soft-prompt, and it changes the scores
"$KMOE" score --model "$model" --kshot "$WORK/data/kshot.jsonl" --max-new-tokens 0 --soft-prompt "$WORK/sp2" \
  --output "$WORK/s_sp.h5" 2> "$WORK/err" || { cat "$WORK/err"; fail "score --soft-prompt"; }
"$KMOE" score --model "$model" --kshot "$WORK/data/kshot.jsonl" --max-new-tokens 0 --output "$WORK/s.h5" 2> /dev/null ||
  fail "score"
"$PYTHON" - "$WORK/s_sp.h5" "$WORK/s.h5" <<'PY' || fail "the soft prompt did not change the scores"
import json, sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
assert np.isfinite(a["nll"][()]).all()
assert np.abs(a["nll"][()] - b["nll"][()]).max() > 1e-3, "same NLLs with and without the soft prompt"
assert any(i["name"] == "soft_prompt" for i in json.loads(a.attrs["inputs"]))
PY

# SIGKILL after a checkpoint (np = 2, AdamW), then the same command: the uninterrupted prompt's bytes.
KMOE_TEST_STEP_DELAY_MS=300 mpi -np 2 "$KMOE" "${args[@]}" --max-steps 10 --checkpoint-every 3 --output "$WORK/spk" \
  2> "$WORK/errk" &
pid=$!
for _ in $(seq 600); do [ -e "$WORK/spk.ckpt.h5" ] && break; sleep 0.1; done
[ -e "$WORK/spk.ckpt.h5" ] || { kill -9 $pid; fail "prompt: no checkpoint appeared: $(cat "$WORK/errk")"; }
pkill -9 -f -- "--output $WORK/spk" || true
wait $pid && fail "the killed prompt run exited 0" || true
[ ! -e "$WORK/spk/train.h5" ] || fail "the killed prompt run finished before the kill"
mpi -np 2 "$KMOE" "${args[@]}" --max-steps 10 --checkpoint-every 3 --output "$WORK/spk" 2> "$WORK/errk2" ||
  { cat "$WORK/errk2"; fail "prompt: resume after SIGKILL"; }
grep -q "resuming from step [1-9]" "$WORK/errk2" || fail "prompt: no resume line: $(cat "$WORK/errk2")"
cmp "$WORK/sp2/adapter_model.safetensors" "$WORK/spk/adapter_model.safetensors" || fail "prompt resumed after SIGKILL differs"

# Adafactor (ProMoT's optimizer): the loss falls; stopped by SIGUSR1 (exit 75) and resumed,
# its factored state restored from the checkpoint, it gives the uninterrupted prompt's bytes
aargs=(train --mode prompt --model "$model" --data "$WORK/data/kshot.jsonl" --prompt-format chat --prompt-tokens 6
       --global-batch 4 --micro-batch 2 --optimizer adafactor --lr 0.3 --lr-decay constant --seed 3 --threads 1
       --max-steps 8 --log-every 1)
"$KMOE" "${aargs[@]}" --output "$WORK/af" 2> "$WORK/err" || { cat "$WORK/err"; fail "adafactor"; }
KMOE_TEST_STEP_DELAY_MS=300 "$KMOE" "${aargs[@]}" --output "$WORK/af2" 2> "$WORK/erru" &
pid=$!
for _ in $(seq 600); do grep -q "step 3/8" "$WORK/erru" && break; sleep 0.1; done
kill -USR1 $pid
set +e; wait $pid; rc=$?; set -e
[ $rc -eq 75 ] || fail "adafactor SIGUSR1: exit $rc, not 75: $(cat "$WORK/erru")"
"$KMOE" "${aargs[@]}" --output "$WORK/af2" 2> "$WORK/errr" || { cat "$WORK/errr"; fail "adafactor resume"; }
grep -q "resuming from step [1-7]" "$WORK/errr" || fail "no resume line: $(cat "$WORK/errr")"
cmp "$WORK/af/adapter_model.safetensors" "$WORK/af2/adapter_model.safetensors" || fail "adafactor resumed differs"
"$PYTHON" - "$WORK/af/train.h5" <<'PY' || fail "adafactor: the loss does not fall"
import json, sys, h5py
f = h5py.File(sys.argv[1], "r")
loss = f["metrics/loss"][:]
assert loss[-1] < loss[0] - 0.1, loss
assert json.loads(f.attrs["options"])["optimizer"] == "adafactor"
PY

# --mode lora+prompt: a LoRA and a soft prompt trained jointly (ProMoT's joint baseline). Its
# first loss is the prompt-only run's (LoRA B starts at 0); both parts move; np 1 = np 2; eval
# takes the folder with its prompt.
jargs=(train --model "$model" --data "$WORK/data/kshot.jsonl" --prompt-format chat --prompt-tokens 6
       --prompt-init text --prompt-init-text "Give the code of the word." --global-batch 4 --micro-batch 2
       --lr 0.05 --lr-decay constant --lora-r 4 --lora-dropout 0 --max-steps 4 --log-every 1 --seed 3 --threads 1)
mpi -np 2 "$KMOE" "${jargs[@]}" --mode lora+prompt --output "$WORK/joint2" 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "lora+prompt np 2"; }
mpi -np 1 "$KMOE" "${jargs[@]}" --mode lora+prompt --output "$WORK/joint1" 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "lora+prompt np 1"; }
mpi -np 1 "$KMOE" "${jargs[@]}" --mode prompt --output "$WORK/jprompt" 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "prompt for lora+prompt"; }
"$KMOE_REF_PYTHON" - "$WORK" "$model" <<'PY' || fail "lora+prompt"
import json, sys, h5py, numpy as np
from safetensors.numpy import load_file
w, model = sys.argv[1:3]
j1, j2, p = (h5py.File(f"{w}/{d}/train.h5", "r")["metrics/loss"][:] for d in ("joint1", "joint2", "jprompt"))
assert len(j1) == 4 and abs(j1[0] - p[0]) < 1e-5 * abs(p[0]), ("first loss differs from the prompt-only run", j1, p)
assert abs(j1 - j2).max() < 1e-5 * abs(j1).max(), ("np 1 and np 2 differ", j1, j2)
assert abs(j1[1:] - p[1:]).max() > 1e-4, ("the LoRA changed nothing", j1, p)
for d in ("joint1", "joint2"):
    cfg = json.load(open(f"{w}/{d}/adapter_config.json"))
    assert cfg["peft_type"] == "LORA", cfg
    sp = json.load(open(f"{w}/{d}/soft_prompt/adapter_config.json"))
    assert sp["peft_type"] == "PROMPT_TUNING" and sp["num_virtual_tokens"] == 6, sp
lora = load_file(f"{w}/joint1/adapter_model.safetensors")
assert max(np.abs(v).max() for k, v in lora.items() if "lora_B" in k) > 0, "lora_B stayed 0"
jp = load_file(f"{w}/joint1/soft_prompt/adapter_model.safetensors")["prompt_embeddings"]
jp2 = load_file(f"{w}/joint2/soft_prompt/adapter_model.safetensors")["prompt_embeddings"]
pp = load_file(f"{w}/jprompt/adapter_model.safetensors")["prompt_embeddings"]
assert np.abs(jp - jp2).max() < 1e-4 * np.abs(jp).max(), "np 1 and np 2 prompts differ"
assert np.abs(jp - pp).max() > 1e-5, "the joint prompt equals the prompt-only one: the LoRA had no effect on it"
opts = json.loads(h5py.File(f"{w}/joint1/train.h5", "r").attrs["options"])
assert opts["prompt_tokens"] == 6 and opts["lora_r"] == 4, opts
PY
"$KMOE" eval --model "$model" --test "$WORK/data/kshot.jsonl" --adapters "$WORK/joint1" \
  --soft-prompt "$WORK/joint1/soft_prompt" --max-new-tokens 4 --output "$WORK/joint_eval.h5" > /dev/null 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "eval of a lora+prompt folder"; }
if "$KMOE" "${jargs[@]}" --mode lora+prompt --soft-prompt "$WORK/sp2" --output "$WORK/jbad" 2> "$WORK/err"; then
  fail "lora+prompt with --soft-prompt ran"
fi
grep -q "lora+prompt trains a soft prompt" "$WORK/err" || { cat "$WORK/err"; fail "lora+prompt --soft-prompt: unclear"; }

# the wrong kind of folder is refused, naming it
if "$KMOE" generate --model "$model" --adapter "$WORK/sp2" "hi" 2> "$WORK/err" > /dev/null; then fail "--adapter SOFT_PROMPT ran"; fi
grep -q "soft prompt" "$WORK/err" || { cat "$WORK/err"; fail "--adapter SOFT_PROMPT: unclear error"; }
if "$KMOE" generate --model "$model" --soft-prompt "$WORK/lora_sp" "hi" 2> "$WORK/err" > /dev/null; then fail "--soft-prompt LORA ran"; fi
grep -q "is a LoRA adapter" "$WORK/err" || { cat "$WORK/err"; fail "--soft-prompt LORA: unclear error"; }
echo ok

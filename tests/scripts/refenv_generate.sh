# The reference environment works for what users compare kmoe with: in build/refenv,
# transformers' generate() runs (Debian's torch 1.13 on Python 3.11 needs
# tests/parity/refenv_fixes.py) and gives the same greedy reply as `kmoe generate` on a
# kmoe init-model folder, and sentence-transformers imports (it needs Pillow).
source "$(dirname "$0")/lib.sh"
: "${KMOE_REF_PYTHON:?}"
model="$WORK/model"
"$KMOE" init-model --output "$model" --hidden 32 --layers 2 --heads 4 --kv-heads 2 --intermediate 64 --seed 5 \
  --init-std 0.5 >/dev/null 2>&1 || fail "init-model"
"$KMOE" generate --model "$model" --max-new-tokens 12 "What is 2 + 3?" > "$WORK/kmoe.txt" 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "kmoe generate"; }
"$KMOE_REF_PYTHON" - "$model" "$WORK/kmoe.txt" <<'PY' || fail "transformers' generate in build/refenv"
import sys, torch
import sentence_transformers  # noqa: F401  (imports Pillow)
from transformers import AutoModelForCausalLM, AutoTokenizer
d, out = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(d)
model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
prompt = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False,
                                 add_generation_prompt=True)
ids = tok(prompt, add_special_tokens=False, return_tensors="pt").input_ids
gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                     pad_token_id=tok.eos_token_id)
reply = tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)
text = open(out, encoding="utf-8").read()  # the prompt, a newline, the reply, a newline
head = "What is 2 + 3?\n"
assert text.startswith(head) and text.endswith("\n"), repr(text)
kmoe = text[len(head):-1]
assert kmoe == reply, (kmoe, reply)
print("transformers generate:", repr(reply), "= kmoe generate")
PY
echo ok

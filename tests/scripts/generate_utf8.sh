# kmoe generate prints what transformers' tokenizer decodes: a byte-level model that emits
# bytes that are not UTF-8 gets U+FFFD for them, not the raw bytes. The init-model weights are
# edited so that greedy decoding emits only 0xC3 (a lead byte never followed by its
# continuation) or 0xFF (never valid), whatever the sign of the final hidden state; the
# reference runs the same greedy loop in transformers and decodes with the HF tokenizer.
source "$(dirname "$0")/lib.sh"
: "${KMOE_REF_PYTHON:?}"
model="$WORK/model"
"$KMOE" init-model --output "$model" --hidden 32 --layers 1 --heads 4 --kv-heads 2 --intermediate 64 --seed 3 \
  >/dev/null 2>&1 || fail "init-model"
"$KMOE_REF_PYTHON" - "$model" <<'PY'
import sys
from safetensors.torch import load_file, save_file
path = sys.argv[1] + "/model.safetensors"
w = load_file(path)
w["model.norm.weight"].zero_()
w["model.norm.weight"][0] = 1.0  # logits = x0 * embed[:, 0] (tied head)
e = w["model.embed_tokens.weight"]
e[:, 0] = 0.0
e[0xC3, 0] = 1000.0   # x0 > 0: 0xC3
e[0xFF, 0] = -1000.0  # x0 < 0: 0xFF
save_file(w, path, metadata={"format": "pt"})
PY
"$KMOE" generate --model "$model" --raw --max-new-tokens 6 "hi" > "$WORK/out" 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "generate"; }
"$KMOE_REF_PYTHON" - "$model" "$WORK/out" <<'PY' || fail "generate's reply differs from transformers'"
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
d, out = sys.argv[1], sys.argv[2]
raw = open(out, "rb").read()
text = raw.decode("utf-8")  # kmoe's stdout must be valid UTF-8
lines = text.split("\n")
assert lines[0] == "hi", lines
tok = AutoTokenizer.from_pretrained(d)
model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
ids = tok("hi").input_ids
new = []
with torch.no_grad():
    for _ in range(6):
        nxt = int(model(torch.tensor([ids + new])).logits[0, -1].argmax())
        if nxt == tok.eos_token_id:
            break
        new.append(nxt)
assert set(new) <= {0xC3, 0xFF} and new, new
want = tok.decode(new, skip_special_tokens=True)
assert "\ufffd" in want, repr(want)
assert lines[1] == want, (lines[1], want)
print("kmoe prints", repr(lines[1]), "as transformers decodes", new)
PY
echo ok

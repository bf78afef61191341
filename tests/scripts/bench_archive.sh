# tools/bench_archive.py (bench results kept in the repository across sessions): a real
# `kmoe eval` output on the tiny scoring model is packed and unpacked; the restored file is
# the same HDF5 (h5dump, datasets, types and attributes alike) and kmoe eval finds it complete
# and skips it; unpack leaves an existing file alone; training files and unit journals are
# not archived; a damaged archive and an OUT without eval files are errors naming the file.
source "$(dirname "$0")/lib.sh"
: "${KMOE_PARITY_DIR:?}"
D="$KMOE_PARITY_DIR/scoring"
TOOL="$(dirname "$0")/../../tools/bench_archive.py"
cat > "$WORK/test.jsonl" <<'JSONL'
{"id": "t1", "question": "Which is a fruit?", "choices": ["apple", "stone", "chair"], "answer": "A"}
{"id": "t2", "question": "Pick the colour.", "choices": ["run", "blue"], "answer": "blue"}
{"id": "t3", "question": "Odd one out? é", "choices": ["cat", "dog", "car", "cow"], "answer": "C"}
JSONL
ev=(eval --model "$D/model" --answer-format choice --max-new-tokens 6 --chunk-size 2 --threads 1
    --test "$WORK/test.jsonl" --base --adapters "$D/adapters/a_qv")
mkdir -p "$WORK/out/seed0" "$WORK/out/seed0/runs"
mpi -np 2 "$KMOE" "${ev[@]}" --output "$WORK/out/seed0/eval.h5" > /dev/null 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "eval"; }
"$PYTHON" - "$WORK/out/seed0/runs/train.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "w") as f:  # a training file: not an eval file, not archived
    f["loss"] = [1.0, 0.5]
PY
"$PYTHON" "$TOOL" pack "$WORK/out" "$WORK/a.json.gz" > "$WORK/log" || fail "pack: $(cat "$WORK/log")"
grep -q "1 eval files" "$WORK/log" || fail "pack count: $(cat "$WORK/log")"
"$PYTHON" "$TOOL" list "$WORK/a.json.gz" | grep -qx "seed0/eval.h5: base, a_qv" || fail "list"
"$PYTHON" "$TOOL" unpack "$WORK/a.json.gz" "$WORK/back" > /dev/null || fail "unpack"
[ ! -e "$WORK/back/seed0/runs/train.h5" ] || fail "a training file was archived"
diff <(h5dump "$WORK/out/seed0/eval.h5" | tail -n +2) <(h5dump "$WORK/back/seed0/eval.h5" | tail -n +2) > "$WORK/d" ||
  { head -20 "$WORK/d"; fail "restored file differs"; }

# kmoe eval over the restored file: complete for these inputs and options, skipped
mpi -np 1 "$KMOE" "${ev[@]}" --output "$WORK/back/seed0/eval.h5" > /dev/null 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "eval over the restored file"; }
grep -q "is complete for these inputs and options; skipping" "$WORK/err" || fail "not skipped: $(cat "$WORK/err")"

# an existing file is kept
echo keep > "$WORK/back/seed0/other"
cp "$WORK/back/seed0/eval.h5" "$WORK/keep.h5"
"$PYTHON" - "$WORK/back/seed0/eval.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "a") as f:
    f.attrs["task"] = "changed"
PY
"$PYTHON" "$TOOL" unpack "$WORK/a.json.gz" "$WORK/back" > "$WORK/log" || fail "unpack again"
grep -q "0 files written, 1 already there" "$WORK/log" || fail "unpack over: $(cat "$WORK/log")"
[ "$(h5dump -a /task "$WORK/back/seed0/eval.h5" | grep -c changed)" = 1 ] || fail "an existing file was overwritten"

# errors name the file, exit non-zero
head -c 200 "$WORK/a.json.gz" > "$WORK/bad.json.gz"
if "$PYTHON" "$TOOL" unpack "$WORK/bad.json.gz" "$WORK/x" 2> "$WORK/err"; then fail "a damaged archive was read"; fi
grep -q "bad.json.gz" "$WORK/err" || fail "damaged archive message: $(cat "$WORK/err")"
mkdir -p "$WORK/empty"
if "$PYTHON" "$TOOL" pack "$WORK/empty" "$WORK/e.json.gz" 2> "$WORK/err"; then fail "packed nothing"; fi
grep -q "no kmoe eval file" "$WORK/err" || fail "empty message: $(cat "$WORK/err")"
[ ! -e "$WORK/e.json.gz" ] && [ ! -e "$WORK/e.json.gz.partial" ] || fail "an archive was written from nothing"
echo ok

# Killing `kmoe run` at any point and running it again ends with the same artifacts as an
# uninterrupted run: a reference run (np = 2) on the tiny setup, then for several kill points
# a fresh run in the same run directory, SIGKILLed (mpirun and every rank) after a delay,
# then rerun to completion; every dataset of every artifact must equal the reference's
# (provenance attributes, which hold times, may differ), and selected.jsonl byte for byte.
source "$(dirname "$0")/lib.sh"
: "${KMOE_REF_PYTHON:?}"
"$KMOE_REF_PYTHON" "$(dirname "$0")/tiny_pipeline.py" "$WORK"
run="$WORK/run"
cat > "$WORK/run.ini" <<INI
run-dir = $run
model = $WORK/model
kshot = $WORK/kshot.jsonl
corpus = $WORK/a.jsonl $WORK/b.jsonl
test = $WORK/test.jsonl
answer-format = number
max-new-tokens = 4
threads = 1
[score]
bank = $WORK/bank
chunk-size = 1
[select-experts]
m = 3
n = 2
[embed]
encoder-model = $WORK/model
block-rows = 8
[select-data]
c = 12
tau = 0.99
[train]
epochs = 1
max-steps = 12
global-batch = 4
checkpoint-every = 2
[eval]
base = true
chunk-size = 1
INI
start=$(date +%s.%N)
mpi -np 2 "$KMOE" run "$WORK/run.ini" 2> "$WORK/ref.err" || { cat "$WORK/ref.err"; fail "reference run"; }
total=$("$PYTHON" -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)")
mv "$run" "$WORK/ref"
echo "reference run: ${total} s"
for frac in 0.2 0.45 0.7 0.9; do
  delay=$("$PYTHON" -c "print(round($total * $frac, 2))")
  rm -rf "$run"
  setsid "$MPIEXEC" --oversubscribe -np 2 "$KMOE" run "$WORK/run.ini" 2> "$WORK/killed.err" &
  pid=$!
  sleep "$delay"
  kill -KILL -- "-$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  sleep 0.5
  last=$(grep -o 'stage [a-z-]*: running' "$WORK/killed.err" | tail -1 || true)
  echo "killed after ${delay} s (${last:-before the first stage})"
  mpi -np 2 "$KMOE" run "$WORK/run.ini" 2> "$WORK/rerun.err" || { cat "$WORK/rerun.err"; fail "rerun after ${delay} s"; }
  "$PYTHON" - "$WORK/ref" "$run" <<'PY' || fail "artifacts after a kill at ${delay} s differ from the reference"
import h5py, numpy as np, sys
ref, run = sys.argv[1], sys.argv[2]
# wall-clock figures are the only datasets allowed to differ
timing = ("tokens_per_s",)
def same(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind == "f" and y.dtype.kind == "f":
        return np.array_equal(x, y, equal_nan=True)
    return np.array_equal(x, y)
def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out
bad = []
for name in ["scores.h5", "experts.h5", "embeddings.h5", "data_selection.h5", "moe.h5", "eval.h5"]:
    a, b = datasets(f"{ref}/{name}"), datasets(f"{run}/{name}")
    if sorted(a) != sorted(b):
        bad.append(f"{name}: datasets {sorted(set(a) ^ set(b))}")
    for k in a:
        if k in b and not any(t in k.split("/")[-1] for t in timing) and not same(a[k], b[k]):
            bad.append(f"{name}:/{k}")
if open(f"{ref}/selected.jsonl", "rb").read() != open(f"{run}/selected.jsonl", "rb").read():
    bad.append("selected.jsonl")
if bad:
    sys.exit("differ: " + ", ".join(bad))
PY
done
echo "kill and rerun: ok"

# Issue 11, items 2-5: kmoe never replaces what it did not write, never writes over its own
# input, lets one process at a time write an output (a second fails at once), and a full
# disk is an error (exit 1, not a crash) that leaves nothing under a final name.
source "$(dirname "$0")/lib.sh"
K() { "$KMOE" "$@"; }   # one rank, MPI singleton
expect_refusal() {  # expect_refusal WHAT PATTERN CMD...: exit 1 and PATTERN in stderr
  local what=$1 pattern=$2; shift 2
  set +e; "$@" > "$WORK/out" 2> "$WORK/err"; local rc=$?; set -e
  [ $rc -eq 1 ] || { cat "$WORK/err"; fail "$what: exit $rc, expected 1"; }
  grep -q -- "$pattern" "$WORK/err" || { cat "$WORK/err"; fail "$what: no '$pattern' in the message"; }
}
digest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum; }

K init-model --output "$WORK/model" --hidden 32 --layers 1 --heads 2 --kv-heads 1 --intermediate 64 2> "$WORK/err" \
  || { cat "$WORK/err"; fail "init-model"; }
"$PYTHON" - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
for name, op in (("add", "+"), ("mul", "*")):
    with open(f"{w}/{name}.jsonl", "w") as f:
        for i in range(8):
            f.write(json.dumps({"instruction": f"{i} {op} 2 =", "output": str(eval(f"{i}{op}2"))}) + "\n")
with open(f"{w}/kshot.jsonl", "w") as f:
    for i in range(4):
        f.write(json.dumps({"id": f"k{i}", "question": f"{i} + 3 =", "answer": str(i + 3)}) + "\n")
PY
base=(train --model "$WORK/model" --data "$WORK/add.jsonl" --global-batch 4 --micro-batch 4 --threads 1)
train=("${base[@]}" --max-steps 2)

# --- 2. --output never destroys a folder kmoe did not write -----------------------------
mkdir "$WORK/keep"; echo x > "$WORK/keep/canary.txt"
expect_refusal "train into a user's folder" "not written by kmoe train" K "${train[@]}" --output "$WORK/keep"
[ "$(cat "$WORK/keep/canary.txt")" = x ] || fail "keep/canary.txt was touched"
[ ! -e "$WORK/keep.partial" ] || fail "keep.partial left behind"

mkdir "$WORK/cwd"; echo y > "$WORK/cwd/mine.txt"
(cd "$WORK/cwd" && expect_refusal "train --output ." "working directory" K "${train[@]}" --output .)
[ "$(cat "$WORK/cwd/mine.txt")" = y ] || fail "--output . deleted the working directory's files"

before=$(digest "$WORK/model")
expect_refusal "train --output MODEL" "input 'model'" K "${train[@]}" --mode full --output "$WORK/model"
[ "$(digest "$WORK/model")" = "$before" ] || fail "--model M --output M changed the base model"
expect_refusal "train into the model folder" "inside the command's input" K "${train[@]}" --output "$WORK/model/sub"

mkdir "$WORK/empty"
K "${train[@]}" --output "$WORK/empty" 2> "$WORK/err" || { cat "$WORK/err"; fail "an empty folder is a valid output"; }
[ -f "$WORK/empty/train.h5" ] && [ -f "$WORK/empty/adapter_model.safetensors" ] || fail "empty/ not filled"

# full mode, then --force into the same folder spelled with a trailing slash: the new model
# replaces the old one, nothing is left inside or beside it.
K "${train[@]}" --mode full --output "$WORK/full" 2> "$WORK/err" || { cat "$WORK/err"; fail "train full"; }
old=$(sha256sum < "$WORK/full/model.safetensors")
K "${train[@]}" --mode full --force --lr 1e-2 --output "$WORK/full/" 2> "$WORK/err" \
  || { cat "$WORK/err"; fail "train full --force --output full/"; }
for f in config.json model.safetensors train.h5; do [ -f "$WORK/full/$f" ] || fail "full/$f lost by --force"; done
[ "$(sha256sum < "$WORK/full/model.safetensors")" != "$old" ] || fail "--force did not replace the model"
ls -a "$WORK/full" | grep -q partial && fail "a .partial inside full/"
ls "$WORK" | grep -E '^full\.(partial|old)' && fail "full.partial or full.old left beside"

# --- 3. --output never overwrites a file kmoe did not write, nor the command's input --------
K bank build --model "$WORK/model" --data "$WORK/add.jsonl" "$WORK/mul.jsonl" --max-steps 2 --global-batch 4 \
  --micro-batch 4 --threads 1 --output-dir "$WORK/bank" 2> "$WORK/err" || { cat "$WORK/err"; fail "bank build"; }
score=(score --model "$WORK/model" --bank "$WORK/bank" --kshot "$WORK/kshot.jsonl" --answer-format exact
       --max-new-tokens 2 --threads 1)
cp "$WORK/kshot.jsonl" "$WORK/kshot.orig"
expect_refusal "score --output KSHOT" "input 'kshot'" K "${score[@]}" --output "$WORK/kshot.jsonl"
cmp -s "$WORK/kshot.jsonl" "$WORK/kshot.orig" || fail "score overwrote its own --kshot"
echo "my notes" > "$WORK/notes.h5"
expect_refusal "score over a foreign file" "not a kmoe artifact" K "${score[@]}" --output "$WORK/notes.h5"
[ "$(cat "$WORK/notes.h5")" = "my notes" ] || fail "score overwrote a file it did not write"
K "${score[@]}" --output "$WORK/scores.h5" 2> "$WORK/err" || { cat "$WORK/err"; fail "score"; }
expect_refusal "train moe over a score artifact" "artifact of kmoe score" \
  K "${train[@]}" --mode moe --adapters "$WORK/bank/add" "$WORK/bank/mul" --output "$WORK/scores.h5"

# --- 4. one writer per output --------------------------------------------------------------
# A long training holds $WORK/busy.lock; a second one, and a score run, into it fail at once.
"$KMOE" "${base[@]}" --max-steps 100000 --checkpoint-every 0 --output "$WORK/busy" 2> "$WORK/err_busy" &
pid=$!
for _ in $(seq 300); do [ -s "$WORK/busy.lock" ] && break; sleep 0.1; done
[ -s "$WORK/busy.lock" ] || { cat "$WORK/err_busy"; fail "no busy.lock while training"; }
t0=$(date +%s)
expect_refusal "second writer" "being written by another kmoe process" K "${train[@]}" --output "$WORK/busy"
[ $(( $(date +%s) - t0 )) -lt 30 ] || fail "the second writer waited instead of failing at once"
kill -9 $pid; wait $pid || true
# kill -9 releases the lock (the kernel drops it with the process): the next run proceeds.
K "${train[@]}" --output "$WORK/busy" 2> "$WORK/err" || { cat "$WORK/err"; fail "re-run after kill -9"; }
[ ! -e "$WORK/busy.lock" ] || fail "busy.lock left after a clean run"
# two `kmoe run`s on one run directory: the second fails at once
mkdir -p "$WORK/rd"
cat > "$WORK/run.ini" <<INI
model = $WORK/model
kshot = $WORK/kshot.jsonl
corpus = $WORK/add.jsonl $WORK/mul.jsonl
test = $WORK/kshot.jsonl
answer-format = exact
threads = 1
[score]
bank = $WORK/bank
[embed]
encoder-model = $WORK/model
INI
(exec 9> "$WORK/rd/run.lock"; "$PYTHON" -c "
import fcntl, os, struct, subprocess, sys
fd = 9
# F_OFD_SETLK = 37; struct flock: short type, short whence, off_t start, off_t len, pid_t pid
fcntl.fcntl(fd, 37, struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0))
r = subprocess.run([os.environ['KMOE'], 'run', sys.argv[1], '--run-dir', sys.argv[2]], capture_output=True, text=True)
sys.stderr.write(r.stderr)
sys.exit(0 if r.returncode == 1 and 'being written by another kmoe process' in r.stderr else 1)
" "$WORK/run.ini" "$WORK/rd") || fail "a second kmoe run on a locked run directory did not fail at once"

# select-data: a selected.jsonl lost after the stage completed makes the stage run again
K embed --corpus "$WORK/add.jsonl" "$WORK/mul.jsonl" --kshot "$WORK/kshot.jsonl" --encoder-model "$WORK/model" \
  --output "$WORK/emb.h5" 2> "$WORK/err" || { cat "$WORK/err"; fail "embed"; }
K select-data --embeddings "$WORK/emb.h5" --corpus "$WORK/add.jsonl" "$WORK/mul.jsonl" --kshot "$WORK/kshot.jsonl" \
  --c 4 --output-dir "$WORK/sel" 2> "$WORK/err" || { cat "$WORK/err"; fail "select-data "; }
[ -s "$WORK/sel/selected.jsonl" ] || fail "no selected.jsonl"
rm "$WORK/sel/selected.jsonl"
K select-data --embeddings "$WORK/emb.h5" --corpus "$WORK/add.jsonl" "$WORK/mul.jsonl" --kshot "$WORK/kshot.jsonl" \
  --c 4 --output-dir "$WORK/sel" 2> "$WORK/err" || { cat "$WORK/err"; fail "select-data re-run"; }
[ -s "$WORK/sel/selected.jsonl" ] || fail "a missing selected.jsonl was not rewritten (the stage was skipped)"

# --- 5. a full disk is exit 1 (not a crash), and no final name appears ----------------------
# A small tmpfs is the full disk (root only: mount). ulimit -f would not do: it also stops
# Open MPI's own shared-memory files, and mpirun resets SIGXFSZ in the ranks.
FULL="$WORK/disk"; mkdir "$FULL"
trap 'umount "$FULL" 2>/dev/null || true; rm -rf "$WORK"' EXIT
full_disk() {  # full_disk SIZE CMD...: CMD with a fresh SIZE tmpfs at $FULL; prints the exit code
  umount "$FULL" 2>/dev/null || true
  mount -t tmpfs -o "size=$1" tmpfs "$FULL"; shift
  set +e; "$@" > "$WORK/out" 2> "$WORK/err"; local rc=$?; set -e
  echo $rc
}
if [ "$(id -u)" != 0 ] || ! mount -t tmpfs -o size=16k tmpfs "$FULL" 2>/dev/null; then
  echo "the full-disk checks need root (a tmpfs mount): not run" >&2
  echo "ok"; exit 0
fi
expect_disk_full() {  # WHAT RC FINAL...: exit 1 naming a write failure, none of FINAL exists
  local what=$1 rc=$2; shift 2
  [ "$rc" = 1 ] || { cat "$WORK/err"; fail "$what on a full disk: exit $rc, expected 1"; }
  grep -qiE "write failed|no space|cannot close|disk full" "$WORK/err" || { cat "$WORK/err"; fail "$what: no write error"; }
  for f in "$@"; do [ ! -e "$f" ] || fail "$what on a full disk left $f under its final name"; done
}
for size in 24k 32k; do  # the journal fits, the artifact does not
  rc=$(full_disk $size K "${score[@]}" --output "$FULL/s.h5"); expect_disk_full "score np=1 ($size)" "$rc" "$FULL/s.h5"
  rc=$(full_disk $size mpi -np 2 "$KMOE" "${score[@]}" --output "$FULL/s.h5")
  expect_disk_full "score np=2 ($size)" "$rc" "$FULL/s.h5"
done
for size in 12k 16k 20k; do  # the adapter, or train.h5 beside it, does not fit
  rc=$(full_disk $size K "${train[@]}" --output "$FULL/lora"); expect_disk_full "train lora ($size)" "$rc" "$FULL/lora"
done
for size in 4k 8k 12k; do
  rc=$(full_disk $size K select-data --embeddings "$WORK/emb.h5" --corpus "$WORK/add.jsonl" "$WORK/mul.jsonl" \
    --kshot "$WORK/kshot.jsonl" --c 4 --output-dir "$FULL/sel")
  expect_disk_full "select-data ($size)" "$rc" "$FULL/sel/selected.jsonl" "$FULL/sel/data_selection.h5"
done
umount "$FULL"
echo "ok"

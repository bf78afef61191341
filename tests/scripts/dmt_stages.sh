# kmoe dmt (DMT, METHOD.md §3) under np = 2: stage 1 on the specialised data, the baselines
# (general only, mixed, sequential) and stage 2 for each k on the general data plus a share k
# of the specialised data, continuing from stage 1 (its adapter, or with --mode full its HF
# folder) with a fresh optimizer; train.h5 records the realised count per source; dmt.json
# lists the runs; a re-run skips every run; a bad k or mode is a usage error.
source "$(dirname "$0")/lib.sh"
model="$WORK/model"
"$KMOE" init-model --output "$model" --hidden 32 --layers 2 --heads 4 --kv-heads 2 --intermediate 64 --seed 5 \
  >/dev/null 2>&1 || fail "init-model"
"$PYTHON" "$(dirname "$0")/train_data.py" "$WORK/data"
d="$WORK/data"
args=(dmt --model "$model" --special "$d/alpaca.jsonl" --general "$d/chat.jsonl" "$d/task0.jsonl"
      --max-steps 3 --global-batch 4 --micro-batch 2 --prompt-format chat --lr 0.01 --seed 3 --threads 1)
mpi -np 2 "$KMOE" "${args[@]}" --k 1,1/4 --output-dir "$WORK/lora" > /dev/null 2> "$WORK/err" || { cat "$WORK/err"; fail "dmt lora"; }
"$PYTHON" - "$WORK/lora" "$d" <<'PY' || fail "dmt lora outputs"
import json, sys, h5py
out, data = sys.argv[1:3]
runs = json.load(open(out + "/dmt.json"))["runs"]
assert [r["name"] for r in runs] == ["special", "general", "mixed", "sequential", "dmt-k1", "dmt-k1_4"], runs
# (sources in order, examples trained on per source): alpaca 16, chat 8, task0 5 records
want = {"special": [16], "general": [8, 5], "mixed": [16, 8, 5], "sequential": [8, 5],
        "dmt-k1": [8, 5, 16], "dmt-k1_4": [8, 5, 4]}
for r in runs:
    with h5py.File(f"{out}/{r['name']}/train.h5", "r") as f:
        assert f.attrs["complete"] == 1
        got = list(f["source_examples"][:])
        assert got == want[r["name"]], (r["name"], got)
        inputs = {i["name"]: i["path"] for i in json.loads(f.attrs["inputs"])}
        stage2 = r["name"] in ("sequential", "dmt-k1", "dmt-k1_4")
        assert (inputs.get("init_adapter") == out + "/special") == stage2, (r["name"], inputs)
        assert r["stage"] == ("2" if stage2 else "1"), r
        # a fresh optimizer: 3 steps in this run, whatever stage 1 did
        assert len(f["metrics/loss"][:]) == 3, (r["name"], f["metrics/loss"][:])
print("dmt lora: 6 runs, sources", want["dmt-k1_4"])
PY

# dmt-k1_4 is exactly `kmoe train --init-adapter special/` on the general data + alpaca:1/4.
mpi -np 2 "$KMOE" train --mode lora --model "$model" --init-adapter "$WORK/lora/special" \
  --data "$d/chat.jsonl" "$d/task0.jsonl" "$d/alpaca.jsonl:1/4" --max-steps 3 --global-batch 4 --micro-batch 2 \
  --prompt-format chat --lr 0.01 --seed 3 --threads 1 --output "$WORK/by_hand" > /dev/null 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "train by hand"; }
cmp "$WORK/by_hand/adapter_model.safetensors" "$WORK/lora/dmt-k1_4/adapter_model.safetensors" ||
  fail "dmt-k1_4 differs from the same stage 2 trained by hand"
cmp -s "$WORK/lora/special/adapter_model.safetensors" "$WORK/lora/dmt-k1_4/adapter_model.safetensors" &&
  fail "stage 2 did not train"

# A re-run trains nothing: every run is complete.
mpi -np 2 "$KMOE" "${args[@]}" --k 1,1/4 --output-dir "$WORK/lora" > /dev/null 2> "$WORK/err2" || { cat "$WORK/err2"; fail "re-run"; }
[ "$(grep -c "is complete" "$WORK/err2")" -ge 6 ] || { cat "$WORK/err2"; fail "the re-run did not skip every run"; }
grep -E "train: [0-9]+ steps|step 1/" "$WORK/err2" && fail "the re-run trained"

# --mode full: stage 2's model is stage 1's HF folder.
mpi -np 2 "$KMOE" dmt --mode full --model "$model" --special "$d/alpaca.jsonl" --general "$d/chat.jsonl" --k 1/2 \
  --no-baselines --max-steps 2 --global-batch 4 --micro-batch 2 --prompt-format chat --lr 0.001 --seed 3 --threads 1 \
  --output-dir "$WORK/full" > /dev/null 2> "$WORK/err3" || { cat "$WORK/err3"; fail "dmt full"; }
"$PYTHON" - "$WORK/full" <<'PY' || fail "dmt full outputs"
import json, sys, h5py
out = sys.argv[1]
assert [r["name"] for r in json.load(open(out + "/dmt.json"))["runs"]] == ["special", "dmt-k1_2"]
with h5py.File(out + "/dmt-k1_2/train.h5", "r") as f:
    inputs = {i["name"]: i["path"] for i in json.loads(f.attrs["inputs"])}
    assert inputs["model"] == out + "/special", inputs
    assert list(f["source_examples"][:]) == [8, 8], list(f["source_examples"][:])
PY

for bad in "--k 0" "--k 3/2" "--k x" "--mode moe"; do
  set +e
  # shellcheck disable=SC2086
  "$KMOE" "${args[@]}" --output-dir "$WORK/bad" $bad 2> "$WORK/err"; rc=$?
  set -e
  [ $rc -eq 2 ] || fail "'$bad': exit $rc"
  grep -q -- "${bad%% *}" "$WORK/err" || fail "'$bad' message: $(cat "$WORK/err")"
done
[ -e "$WORK/bad" ] && fail "a usage error left $WORK/bad"
echo "kmoe dmt: ok"

# kmoe demo --profile tiny on two tasks, np = 2: the table is printed with every method row
# and every task column plus the average; demo.md, demo_results.json and demo.png are written;
# a second run skips every step (each stage finds its artifact complete) and prints the same
# table.
source "$(dirname "$0")/lib.sh"
dir="$WORK/demo"
mpi -np 2 "$KMOE" demo --profile tiny --tasks mc,yesno --work-dir "$dir" --threads 1 > "$WORK/out1" 2> "$WORK/err1" ||
  { tail -50 "$WORK/err1"; fail "first demo run"; }
cat "$WORK/out1"
for row in "base model" "MoE of 4 random adapters" "best single adapter" "best adapter + K-shot fine-tuning" \
  "MoE of selected experts, K-shot data only" "full method (K-shot MoE)"; do
  line=$(grep -F "$row" "$WORK/out1") || fail "no row '$row' in the table"
  # three numbers: mc, yesno, average
  [ "$(echo "$line" | grep -oE '[0-9]+\.[0-9]' | wc -l)" -eq 3 ] || fail "row '$row' lacks a number: $line"
done
grep -qE "^method +mc +yesno +average" "$WORK/out1" || fail "no header with the task columns"
for f in demo.md demo_results.json demo.png; do [ -s "$dir/$f" ] || fail "$dir/$f missing"; done
"$PYTHON" - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
r = json.load(open(d + "/demo_results.json"))
assert r["tasks"] == ["mc", "yesno"], r["tasks"]
assert [m["key"] for m in r["methods"]] == ["base", "random_moe", "best_adapter", "best_adapter_kshot", "moe_kshot", "full"]
for m in r["methods"]:
    for t in ("mc", "yesno"):
        assert 0 <= m["accuracy_percent"][t] <= 100, m
    avg = (m["accuracy_percent"]["mc"] + m["accuracy_percent"]["yesno"]) / 2
    assert abs(m["average_percent"] - avg) < 1e-9, m
for t in ("mc", "yesno"):
    assert len(r["tasks_detail"][t]["random_experts"]) == 4
md = open(d + "/demo.md").read()
assert "| full method (K-shot MoE) |" in md and "demo.png" in md, md
assert open(d + "/demo.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
PY

# Issue 17: every artifact of the demo (each kind but OUTPUT.ckpt.h5, which
# non_finite_values.sh checks) has exactly the layout docs/artifacts.json describes, and the
# check names the file and field of a dataset or attribute the description does not list.
root=$(cd "$(dirname "$0")/../.." && pwd)
check=("$PYTHON" "$root/tests/tools/check_artifacts.py" "$root/docs/artifacts.json")
mapfile -t h5 < <(find "$dir" -name '*.h5' | sort)
"${check[@]}" "${h5[@]}" --require scores.h5,experts.h5,embeddings.h5,data_selection.h5,moe.h5,train.h5,bank.h5,eval.h5 \
  > "$WORK/layout" 2>&1 || { cat "$WORK/layout"; fail "an artifact differs from docs/artifacts.json"; }
tail -1 "$WORK/layout"
cp "$dir/runs/mc/moe.h5" "$WORK/bad_moe.h5"
"$PYTHON" - "$WORK/bad_moe.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "a") as f:
    f["undocumented"] = np.zeros(3)
    f["moe"].attrs["alphas"] = "[]"
    del f["moe"].attrs["target_modules"]
    del f["router_load"]
    f["router_load"] = np.zeros((f["moe/keys"].shape[0] + 1, 2), np.float32)
PY
"${check[@]}" "$WORK/bad_moe.h5" > "$WORK/bad" 2>&1 && fail "a changed moe.h5 passed the layout check"
for want in "bad_moe.h5: /undocumented: dataset is not in the description" \
  "bad_moe.h5: /moe: attribute 'alphas' is not in the description" "bad_moe.h5: /moe: attribute 'target_modules' missing" \
  "bad_moe.h5: /router_load: dimension 'keys' is"; do
  grep -qF "$want" "$WORK/bad" || { cat "$WORK/bad"; fail "the layout check did not report '$want'"; }
done

start=$(date +%s)
mpi -np 2 "$KMOE" demo --profile tiny --tasks mc,yesno --work-dir "$dir" --threads 1 > "$WORK/out2" 2> "$WORK/err2" ||
  { tail -50 "$WORK/err2"; fail "second demo run"; }
elapsed=$(( $(date +%s) - start ))
for s in score select-experts embed select-data train eval; do
  [ "$(grep -c "stage $s: skipped (complete)" "$WORK/err2")" -eq 2 ] || fail "second run did not skip $s on both tasks"
done
grep "stage .*: ran" "$WORK/err2" | grep -v "stage report" && fail "second run ran a pipeline stage"
for what in "suite: .* complete" "init-model: .* complete" "bank-build: .* is complete" "train: .*/base/train.h5 is complete" \
  "train: .*/moe_random.h5 is complete" "train: .*/moe_kshot.h5 is complete" "eval: .*/eval_bank.h5 is complete" \
  "eval: .*/eval_baselines.h5 is complete"; do
  [ "$(grep -cE "$what" "$WORK/err2")" -ge 1 ] || fail "second run: no '$what'"
done
grep -E "train: [0-9]+ steps" "$WORK/err2" && fail "second run trained"
diff <(grep -A8 "^method" "$WORK/out1") <(grep -A8 "^method" "$WORK/out2") || fail "the second run's table differs"
echo "second run: ${elapsed} s"
echo "kmoe demo (tiny): ok"

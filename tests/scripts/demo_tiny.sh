# kmoe demo --profile tiny on two tasks, np = 2: the table is printed with every method row
# and every task column plus the average; demo.md, demo_results.json and demo.png are written;
# a second run skips every step (each stage finds its artifact complete) and prints the same
# table. Issue 14: the demo's validation, K-shot and test examples never overlap; no artifact
# but the evaluations reads the test split (provenance inputs); --eval-split validation makes
# the same choices without training anything again; two draws give mean +- sd, intervals over
# the test examples and t intervals over the draws.
source "$(dirname "$0")/lib.sh"
dir="$WORK/demo"
mpi -np 2 "$KMOE" demo --profile tiny --tasks mc,yesno --work-dir "$dir" --threads 1 > "$WORK/out1" 2> "$WORK/err1" ||
  { tail -50 "$WORK/err1"; fail "first demo run"; }
cat "$WORK/out1"
for row in "base model" "MoE of 4 random adapters" "best single adapter" "best adapter + K-shot fine-tuning" \
  "MoE of selected experts, K-shot data only" "full method (K-shot MoE)"; do
  line=$(grep -F "$row" "$WORK/out1" | head -1) && [ -n "$line" ] || fail "no row '$row' in the table"
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
    assert len(r["tasks_detail"][t]["draw0"]["random_experts"]) == 4
assert [d["baseline"] for d in r["full_minus_baseline"]][0] == "base model", r["full_minus_baseline"]
for t in ("mc", "yesno"):  # 4 of the 20 open datasets are in each family
    f = r["related_family"][t]
    assert f["family"] == t and abs(f["random_experts"] - 0.2) < 1e-9 and abs(f["random_data"] - 0.2) < 1e-9, f
    chosen = r["tasks_detail"][t]["draw0"]["chosen_experts"]
    share = sum(p.rstrip("/").split("/")[-1].split(".")[0] == t for p in chosen) / len(chosen)
    assert abs(f["chosen_experts"] - share) < 1e-9, (f, chosen)
for diff in r["full_minus_baseline"]:
    for t in ("mc", "yesno", "average"):
        p = diff["points"][t]
        assert p["lo"] <= p["mean"] <= p["hi"], diff
        assert "over_draws" not in p, diff  # one draw: no interval over draws
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
cp "$dir/runs/mc/draw0/moe.h5" "$WORK/bad_moe.h5"
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
  "train: .*/moe_random.h5 is complete" "train: .*/moe_kshot.h5 is complete" "eval: .*/eval_baselines.h5 is complete" \
  "eval: .*/eval_baselines.h5 is complete"; do
  [ "$(grep -cE "$what" "$WORK/err2")" -ge 1 ] || fail "second run: no '$what'"
done
grep -E "train: [0-9]+ steps" "$WORK/err2" && fail "second run trained"
diff <(grep -A8 "^method" "$WORK/out1") <(grep -A8 "^method" "$WORK/out2") || fail "the second run's table differs"
echo "second run: ${elapsed} s"

# Splits: within each task of the demo's suite, no question is in two of validation, the
# K-shot draws and test. Test results: no artifact but an evaluation has the test split among
# its provenance inputs.
"$PYTHON" - "$dir" <<'PY'
import glob, json, sys, h5py
d = sys.argv[1]
suite = json.load(open(d + "/suite/suite.json"))
for t in suite["tasks"]:
    files = [t["test"]["file"], t["validation"]["file"]] + [k["file"] for k in t["kshot_draws"]]
    owner = {}
    for f in files:
        for line in open(d + "/suite/" + f):
            ex = json.loads(line)
            q = (ex.get("question") or ex.get("instruction", ""), ex.get("input", ""), tuple(ex.get("choices", [])))
            assert q not in owner, "%s: %r is in %s and %s" % (t["name"], q, owner[q], f)
            owner[q] = f
tests = {d + "/suite/" + t["test"]["file"] for t in suite["tasks"]}
checked = 0
for h5 in glob.glob(d + "/**/*.h5", recursive=True):
    if "/eval" in h5 or h5.endswith(".ckpt.h5"):
        continue
    with h5py.File(h5, "r") as f:
        if "inputs" not in f.attrs:
            continue
        for i in json.loads(f.attrs["inputs"]):
            assert not any(i["path"].startswith(t) for t in tests), "%s reads the test split: %s" % (h5, i)
        checked += 1
assert checked >= 10, checked
print("splits disjoint; %d artifacts read no test file" % checked)
PY

# On the validation split: nothing is trained again, and every choice is the test run's.
mpi -np 2 "$KMOE" demo --profile tiny --tasks mc,yesno --work-dir "$dir" --threads 1 --eval-split validation \
  > "$WORK/out3" 2> "$WORK/err3" || { tail -50 "$WORK/err3"; fail "validation demo run"; }
grep -E "train: [0-9]+ steps" "$WORK/err3" && fail "the validation run trained"
grep -q "validation accuracy" "$WORK/out3" || fail "no validation table"
"$PYTHON" - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
a = json.load(open(d + "/demo_results.json"))
b = json.load(open(d + "/demo_validation_results.json"))
assert b["eval_split"] == "validation"
for t in ("mc", "yesno"):
    x, y = a["tasks_detail"][t]["draw0"], b["tasks_detail"][t]["draw0"]
    for k in ("chosen_experts", "random_experts", "best_adapter", "kshot"):
        assert x[k] == y[k], (t, k, x[k], y[k])
PY

# --sizes: a validation run with other pipeline sizes keeps its runs in runs_TAG and its tables
# in demo_validation_TAG*, starts from the profile run's scores and embeddings (their stages
# skip), selects C open rows, trains with the new epochs, and leaves the profile run's files
# as they were. A size kmoe does not know, or a value out of range, is a usage error.
profile_files=("$dir"/runs/mc/draw0/{moe.h5,scores.h5,embeddings.h5,selected.jsonl,moe_kshot.h5})
before=$(sha256sum "${profile_files[@]}")
mpi -np 2 "$KMOE" demo --profile tiny --tasks mc,yesno --work-dir "$dir" --threads 1 --eval-split validation \
  --sizes moe-epochs=2,c=8 > "$WORK/out5" 2> "$WORK/err5" || { tail -50 "$WORK/err5"; fail "--sizes demo run"; }
for s in score embed; do
  grep -q "stage $s: skipped (complete)" "$WORK/err5" || fail "the --sizes run did not reuse the profile run's $s"
done
grep -q "stage select-data: ran" "$WORK/err5" || fail "the --sizes run did not select data again"
grep -q "profile tiny with c=8,moe-epochs=2" "$WORK/out5" || { cat "$WORK/out5"; fail "no sizes in the table's title"; }
[ "$(sha256sum "${profile_files[@]}")" = "$before" ] || fail "the --sizes run changed the profile run's files"
"$PYTHON" - "$dir" <<'PY'
import json, sys, h5py
d = sys.argv[1]
tag = "c=8_moe-epochs=2"
r = json.load(open(d + "/demo_validation_%s_results.json" % tag))
assert r["sizes"] == "c=8,moe-epochs=2" and r["command"].endswith("--sizes c=8,moe-epochs=2"), r["command"]
run = d + "/runs_%s/mc/draw0" % tag
assert r["tasks_detail"]["mc"]["draw0"]["run_dir"] == run
rows = [json.loads(l) for l in open(run + "/selected.jsonl")]
assert sum(not x.get("_kshot", False) for x in rows) == 8, len(rows)
for f in ("moe.h5", "moe_random.h5"):
    with h5py.File(run + "/" + f, "r") as h:
        assert json.loads(h.attrs["options"])["epochs"] == 2, f
with h5py.File(d + "/runs/mc/draw0/moe.h5", "r") as h:
    assert json.loads(h.attrs["options"])["epochs"] == 1
PY
# tools/demo_sizes_table.py sets the two validation runs side by side, one choice per row.
"$PYTHON" "$root/tools/demo_sizes_table.py" "$dir" --rows full,best_adapter_kshot > "$WORK/sizes_table" ||
  fail "demo_sizes_table.py failed"
cat "$WORK/sizes_table"
[ "$(grep -c '<- chosen' "$WORK/sizes_table")" -eq 2 ] || fail "not one chosen sizes per row"
[ "$(grep -cE '^  (\(profile\)|c=8,moe-epochs=2) ' "$WORK/sizes_table")" -eq 4 ] || fail "a run is missing from the table"
# Each run records the sizes it ran with; after the profile's own sizes change (here: its
# validation run re-written as if made with moe-epochs=2), the earlier --sizes run is labelled by
# what differs from today's profile (c=8 only), not by its --sizes.
cp -r "$dir" "$WORK/sizes_changed"
"$PYTHON" - "$WORK/sizes_changed/demo_validation_results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
sizes = dict(r["pipeline_sizes"])
assert sizes["c"] == 16 and sizes["moe-epochs"] == 1 and sizes["n"] == 2, sizes
r["pipeline_sizes"] = [[k, 2 if k == "moe-epochs" else v] for k, v in r["pipeline_sizes"]]
json.dump(r, open(sys.argv[1], "w"))
PY
"$PYTHON" "$root/tools/demo_sizes_table.py" "$WORK/sizes_changed" --rows full > "$WORK/sizes_table2" ||
  fail "demo_sizes_table.py failed after the profile changed"
grep -qE '^  c=8 ' "$WORK/sizes_table2" && ! grep -q 'moe-epochs' "$WORK/sizes_table2" ||
  { cat "$WORK/sizes_table2"; fail "a run is not labelled by its sizes against today's profile"; }
rm -rf "$WORK/sizes_changed"
for bad in "cc=8" "c=0" "c=8,c=9" "moe-lr=x"; do
  "$KMOE" demo --profile tiny --work-dir "$dir" --sizes "$bad" > /dev/null 2> "$WORK/bad_sizes" &&
    fail "--sizes $bad was accepted"
  grep -q -- "--sizes" "$WORK/bad_sizes" || { cat "$WORK/bad_sizes"; fail "--sizes $bad: no message naming --sizes"; }
done

# Two K-shot draws of one task: mean +- sd per cell, and draw 1 runs on kshot-1.jsonl; with
# the paper's Tables 2 (expert selection) and 3 (data), each row its own MoE.
mpi -np 2 "$KMOE" demo --profile tiny --tasks yesno --work-dir "$dir" --threads 1 --draws 2 --tables 1,2,3 \
  > "$WORK/out4" 2> "$WORK/err4" || { tail -50 "$WORK/err4"; fail "two-draw demo run"; }
grep -q "2 K-shot draws, mean" "$WORK/out4" || { cat "$WORK/out4"; fail "no mean +- sd header"; }
# It replaced the two-task files of the runs above, and says how to get them back; the second
# run above, the same command as the first, replaced nothing and said nothing.
grep -qE "these files replace those of \`kmoe demo --work-dir .* --tasks mc,yesno --seed 0 --profile tiny --draws 1\`" \
  "$WORK/out4" || { tail -5 "$WORK/out4"; fail "no note that the two-task files were replaced"; }
grep -q "these files replace" "$WORK/out2" && fail "the same command again said it replaced files"
grep -F "full method (K-shot MoE)" "$WORK/out4" | grep -q "±" || fail "no sd in the full method's row"
grep -q "95% t interval over the 2 draws" "$WORK/out4" || fail "no differences with t intervals over the draws"
"$PYTHON" - "$dir" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1] + "/demo_results.json"))
assert r["draws"] == 2
assert r["tasks_detail"]["yesno"]["draw1"]["kshot"].endswith("tasks/yesno/kshot-1.jsonl")
for m in r["methods"]:
    assert m["sd_percent"]["yesno"] is not None and m["sd_percent"]["yesno"] >= 0, m
t2, t3 = r["ablation_tables"]
assert t2["number"] == 2 and [m["key"] for m in t2["methods"]] == ["random_moe", "rp", "ra", "rp_ra", "full"], t2
assert t3["number"] == 3 and [m["key"] for m in t3["methods"]] == ["moe_kshot", "random_data", "cosine", "full"], t3
# the full method's row is the same numbers in every table
full = [t for t in r["methods"] if t["key"] == "full"][0]["accuracy_percent"]
assert t2["methods"][-1]["accuracy_percent"] == full and t3["methods"][-1]["accuracy_percent"] == full
import h5py
# the base model does not depend on the draw: draw 0 evaluates it, draw 1 reads that row
d0, d1 = r["tasks_detail"]["yesno"]["draw0"], r["tasks_detail"]["yesno"]["draw1"]
assert d0["base_eval"] == d1["base_eval"] == d0["eval"][0], (d0, d1)
with h5py.File(d1["eval"][0], "r") as f:
    names = [n.decode() if isinstance(n, bytes) else n for n in f["models"][()]]
    assert "base" not in names and "best_adapter_kshot" in names, names
base = [t for t in r["methods"] if t["key"] == "base"][0]
assert base["sd_percent"]["yesno"] == 0, base
for diff in r["full_minus_baseline"]:  # the t interval over the two draws is centred on the mean
    p = diff["points"]["yesno"]
    o = p["over_draws"]
    assert o["lo"] <= p["mean"] <= o["hi"] and abs((o["hi"] - p["mean"]) - (p["mean"] - o["lo"])) < 1e-9, diff
for d in (0, 1):
    a = sys.argv[1] + "/runs/yesno/draw%d/ablation" % d
    for key, signals in (("rp", "perplexity"), ("ra", "accuracy"), ("rp_ra", "both")):
        with h5py.File("%s/experts_%s.h5" % (a, key), "r") as f:
            opts = json.loads(f.attrs["options"])
            assert opts["signals"] == signals and opts["diversity"] is False, opts
    # rows that chose the same experts in the same order are one model: the later row is not
    # trained or evaluated again, and demo_results.json says whose model it is
    same = r["tasks_detail"]["yesno"]["draw%d" % d]["ablation_same_model"]
    with h5py.File(sys.argv[1] + "/runs/yesno/draw%d/eval_ablation.h5" % d, "r") as f:
        evaluated = [n.decode() if isinstance(n, bytes) else n for n in f["models"][()]]
    first = {}
    for key in ("rp", "ra", "rp_ra"):
        with h5py.File("%s/experts_%s.h5" % (a, key), "r") as f:
            earlier = first.setdefault(tuple(f["chosen_paths"].asstr()[:]), key)
        trained = os.path.exists("%s/moe_%s.h5" % (a, key))
        if earlier == key:
            assert key not in same and trained and key in evaluated, (key, same, evaluated)
        else:
            assert same.get(key) == earlier and not trained and key not in evaluated, (key, same, evaluated)
            print("draw %d: %s is %s (one model)" % (d, key, earlier))
    with h5py.File(a + "/cosine/data_selection.h5", "r") as f:
        assert f.attrs["tau"] == 1.0 and len(f["dropped"]) == 0
    assert sum(1 for _ in open(a + "/random_data.jsonl")) == 16  # C
same = {kv for d in (0, 1) for kv in r["tasks_detail"]["yesno"]["draw%d" % d]["ablation_same_model"].items()}
labels = {m["key"]: m["label"] for m in t2["methods"]}
notes = t2.get("notes", [])
assert sorted(n.split(" on ")[0] for n in notes) == sorted(labels[k] + " is " + labels[v] for k, v in same), notes
PY
echo "kmoe demo (tiny): ok"

# kmoe report --compare (issue 14): eval artifacts of three K-shot draws of two tasks, with
# known per-example outcomes written by h5py in eval's layout (the base model evaluated in
# draw 0 only, as the demo does), and a validation-split evaluation of one task. The table
# must give each row's mean and sample sd over the runs as numpy computes them, use the
# base's one run for every draw, split one task evaluated on two example files into two
# columns, and give "moe - each row" with the exact mean difference inside a paired-bootstrap
# interval and with numpy's 95% t interval over the runs. Bad inputs fail naming the file:
# examples that differ between runs of one split, an interrupted (incomplete) eval, a reference
# that names no row.
source "$(dirname "$0")/lib.sh"
R="$WORK/runs"
"$PYTHON" - "$R" <<'PY'
import json, os, sys
import h5py, numpy as np
R = sys.argv[1]
rng = np.random.default_rng(7)
s = h5py.string_dtype()
truth = {}  # (task, split) -> row -> [per-draw outcomes]
def write(path, task, split_file, sha, models, outcomes, complete=1, samples=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    n = outcomes.shape[1]
    with h5py.File(path, "w") as f:
        f.create_dataset("models", data=models, dtype=s)
        f.create_dataset("samples", data=samples or ["%s-%04d" % (task, i) for i in range(n)], dtype=s)
        f["correct"] = outcomes.astype(np.int64)
        f["accuracy"] = outcomes.mean(1).astype(np.float32)
        for k, v in {"stage": "eval", "kmoe_version": "0.1.0", "git_revision": "x", "options": "{}",
                     "start_time": "2026-12-03T00:00:00Z", "end_time": "2026-12-03T00:00:01Z", "task": task,
                     "answer_format": "yesno", "format": "kmoe-artifact"}.items():
            f.attrs[k] = k == "task" and task or v
        f.attrs["world_size"] = np.int64(1)
        f.attrs["complete"] = np.int64(complete)
        f.attrs["inputs"] = json.dumps([{"name": "model", "path": "/m", "sha256": "aa"},
                                        {"name": "test", "path": split_file, "sha256": sha}])
rates = {"moe": 0.62, "lora": 0.55, "base": 0.40}
for task, n in (("t1", 200), ("t2", 150)):
    base = (rng.random(n) < rates["base"]).astype(np.int64)
    truth[task] = {"base": [base] * 3, "moe": [], "lora": []}
    for d in range(3):
        run = "%s/%s/draw%d" % (R, task, d)
        moe = (rng.random(n) < rates["moe"] + 0.03 * d).astype(np.int64)
        lora = (rng.random(n) < rates["lora"]).astype(np.int64)
        truth[task]["moe"].append(moe)
        truth[task]["lora"].append(lora)
        write(run + "/eval.h5", task, "/suite/%s/test.jsonl" % task, "sha-" + task, ["moe"], moe[None])
        if d == 0:
            write(run + "/eval_baselines.h5", task, "/suite/%s/test.jsonl" % task, "sha-" + task, ["base", "lora"],
                  np.stack([base, lora]))
        else:
            write(run + "/eval_baselines.h5", task, "/suite/%s/test.jsonl" % task, "sha-" + task, ["lora"], lora[None])
val = (rng.random(50) < 0.5).astype(np.int64)
write(R + "/t1/val/eval_validation.h5", "t1", "/suite/t1/validation.jsonl", "sha-t1-val", ["moe"], val[None])
# bad inputs
write(R + "/bad/eval.h5", "t1", "/suite/t1/test.jsonl", "sha-t1", ["moe"], np.ones((1, 200)),
      samples=["other-%04d" % i for i in range(200)])
write(R + "/partial/eval.h5", "t1", "/suite/t1/test.jsonl", "sha-t1", ["moe"], np.ones((1, 200)), complete=0)
json.dump({t: {k: [v.tolist() for v in rows] for k, rows in truth[t].items()} for t in truth} | {"val": val.tolist()},
          open(R + "/truth.json", "w"))
PY

runs=()
for t in t1 t2; do for d in 0 1 2; do runs+=("$R/$t/draw$d"); done; done
mpi -np 2 "$KMOE" report --compare "${runs[@]}" "$R/t1/val/eval_validation.h5" --output "$WORK/out" \
  > "$WORK/stdout" 2> "$WORK/err" || { cat "$WORK/err"; fail "report --compare"; }
cat "$WORK/stdout"
grep -q "moe - \.\.\." "$WORK/stdout" || fail "no differences block in the printed table"
for f in compare.md compare.json compare.png; do [ -s "$WORK/out/$f" ] || fail "$f missing"; done
"$PYTHON" - "$R" "$WORK/out" <<'PY'
import json, sys, struct, zlib
import numpy as np
R, out = sys.argv[1], sys.argv[2]
truth = json.load(open(R + "/truth.json"))
c = json.load(open(out + "/compare.json"))
assert c["tasks"] == ["t1@test", "t2", "t1@validation"], c["tasks"]  # in order of first appearance
assert c["draws"] == 3 and c["reference"] == "moe", c
rows = {m["key"]: m for m in c["methods"]}
assert list(rows) == ["moe", "base", "lora"], list(rows)  # order of first appearance
for task, col in (("t1", "t1@test"), ("t2", "t2")):
    for row in ("moe", "base", "lora"):
        per = [100 * np.mean(o) for o in truth[task][row]]
        got, sd = rows[row]["accuracy_percent"][col], rows[row]["sd_percent"][col]
        assert abs(got - np.mean(per)) < 1e-9, (task, row, got, per)
        assert abs(sd - np.std(per, ddof=1)) < 1e-9, (task, row, sd, per)
assert rows["base"]["sd_percent"]["t1@test"] == 0  # one run, used for every draw
assert abs(rows["moe"]["accuracy_percent"]["t1@validation"] - 100 * np.mean(truth["val"])) < 1e-9
assert rows["lora"]["accuracy_percent"]["t1@validation"] is None
assert rows["lora"]["average_percent"] is None  # a column missing: no average
diffs = {d["baseline"]: d["points"] for d in c["full_minus_baseline"]}
assert set(diffs) == {"base", "lora"}, diffs
for row in ("base", "lora"):
    for task, col in (("t1", "t1@test"), ("t2", "t2")):
        want = 100 * np.mean([np.mean(np.array(a) - np.array(b)) for a, b in zip(truth[task]["moe"], truth[task][row])])
        d = diffs[row][col]
        assert abs(d["mean"] - want) < 1e-9, (row, col, d, want)
        assert d["lo"] < want < d["hi"] and d["hi"] - d["lo"] < 25, (row, col, d)
        # over the three runs: mean +- t(0.975, 2) sd / sqrt 3 of the per-run differences
        per = [100 * np.mean(np.array(a) - np.array(b)) for a, b in zip(truth[task]["moe"], truth[task][row])]
        half = 4.303 * np.std(per, ddof=1) / np.sqrt(3)
        o = d["over_draws"]
        assert abs(o["lo"] - (want - half)) < 1e-9 and abs(o["hi"] - (want + half)) < 1e-9, (row, col, o, per)
    assert diffs[row]["t1@validation"]["mean"] is None  # no pair on validation
    assert diffs[row]["average"]["mean"] is None
png = open(out + "/compare.png", "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n"
w, h = struct.unpack(">II", png[16:24])
assert w > 400 and h > 100, (w, h)
md = open(out + "/compare.md").read()
assert "![runs compared](compare.png)" in md and R + "/t2/draw2/eval.h5" in md
PY

# Reference given, on a table without the validation column: averages and their interval.
mpi -np 1 "$KMOE" report --compare "${runs[@]}" --reference lora --output "$WORK/out2" > /dev/null 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "report --compare --reference lora"; }
"$PYTHON" - "$R" "$WORK/out2" <<'PY'
import json, sys
import numpy as np
R, out = sys.argv[1], sys.argv[2]
truth = json.load(open(R + "/truth.json"))
c = json.load(open(out + "/compare.json"))
assert c["reference"] == "lora" and c["tasks"] == ["t1", "t2"], c
d = {x["baseline"]: x["points"] for x in c["full_minus_baseline"]}["moe"]["average"]
want = np.mean([100 * np.mean([np.mean(np.array(b) - np.array(a)) for a, b in zip(truth[t]["moe"], truth[t]["lora"])])
                for t in ("t1", "t2")])
assert abs(d["mean"] - want) < 1e-9 and d["lo"] < want < d["hi"], (d, want)
per = [np.mean([100 * np.mean(np.array(truth[t]["lora"][k]) - np.array(truth[t]["moe"][k])) for t in ("t1", "t2")])
       for k in range(3)]  # the per-run differences averaged over the tasks
half = 4.303 * np.std(per, ddof=1) / np.sqrt(3)
assert abs(d["over_draws"]["lo"] - (want - half)) < 1e-9 and abs(d["over_draws"]["hi"] - (want + half)) < 1e-9, d
m = {x["key"]: x for x in c["methods"]}["moe"]
per_draw = [np.mean([100 * np.mean(truth[t]["moe"][k]) for t in ("t1", "t2")]) for k in range(3)]
assert abs(m["average_sd_percent"] - np.std(per_draw, ddof=1)) < 1e-9, (m, per_draw)
PY

expect_fail() {  # WHAT EXIT-CODE PATTERN ARGS...
  local what=$1 code=$2 pattern=$3
  shift 3
  set +e
  mpi -np 1 "$KMOE" report "$@" > /dev/null 2> "$WORK/err"
  local rc=$?
  set -e
  [ "$rc" -eq "$code" ] || { cat "$WORK/err"; fail "$what: exit $rc, not $code"; }
  grep -qE -- "$pattern" "$WORK/err" || { cat "$WORK/err"; fail "$what: message lacks '$pattern'"; }
}
expect_fail "other examples" 1 "bad/eval.h5: its samples differ" --compare "$R/t1/draw0" "$R/bad" --output "$WORK/o3"
expect_fail "incomplete eval" 1 "partial/eval.h5: not a complete artifact" --compare "$R/partial" --output "$WORK/o3"
expect_fail "unknown reference" 2 "--reference nope names no row \(rows: moe, base, lora\)" \
  --compare "$R/t1/draw0" --reference nope --output "$WORK/o3"
expect_fail "no output" 2 "--output DIR is required" --compare "$R/t1/draw0"
expect_fail "both" 2 "not both" "$R/t1/draw0" --compare "$R/t1/draw1" --output "$WORK/o3"
[ ! -e "$WORK/o3/compare.json" ] || fail "a failed comparison wrote compare.json"
echo "kmoe report --compare: ok"

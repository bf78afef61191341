# tools/promot_dmt_table.py moe (bench/promot_moe_smollm2.sh's table) on eval files made here
# with known answers: the per-task cells are the means over draws, the differences are the
# paired ones, the average over tasks uses only the draws every task has, a draw without the
# demo's full-method row is left out, and the header names the runs' C (from run.ini). The
# lora mode (bench/selected_lora_smollm2.sh's table) reads its row from the same layout. The
# ft-val mode (bench/kshot_ft_sweep_smollm2.sh) chooses the setting with the best validation
# average on the task-draws every setting has, reading nothing under test/; ft sets the chosen
# adapter's test row beside the demo's; moe-tuned (bench/moe_sweep_smollm2.sh's test) sets the
# tuned MoE beside the tuned fine-tuning, each difference on the draws that have both rows.
source "$(dirname "$0")/lib.sh"
TOOL="$(dirname "$0")/../../tools/promot_dmt_table.py"
# the eval files the tables read: tests/scripts/evfiles.py, imported by each snippet below
export PYTHONPATH="$(cd "$(dirname "$0")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" - "$WORK" <<'PY' || fail "making the eval files"
import sys
w = sys.argv[1]
from evfiles import ev
# task a: draws 0, 1 (10 examples); task b: draw 0 only (a draw 1 without the demo's row)
n = 10
for task, draws in (("a", (0, 1)), ("b", (0, 1))):
    for d in draws:
        k = {"a": 2 + d, "b": 5}[task]  # the full method: k of 10 right
        o, demo = f"{w}/out/{task}/draw{d}", f"{w}/out/demo_evals/runs/{task}/draw{d}"
        ev(f"{o}/eval.h5", "moe", [1] * (k + 3) + [0] * (n - k - 3))          # + prompt: 3 more
        ev(f"{o}/eval_prompt_only.h5", "base", [1] * 1 + [0] * (n - 1))
        ev(f"{o}/eval_control.h5", "best_adapter_kshot_prompt", [1] * 4 + [0] * (n - 4))
        if task == "a":
            ev(f"{o}/eval_selected_lora.h5", "best_adapter_selected", [0] * 3 + [1] * (n - 3))  # 7 of 10, other ones
        if not (task == "b" and d == 1):
            ev(f"{demo}/eval.h5", "moe", [1] * k + [0] * (n - k))
            ev(f"{demo}/eval_baselines.h5", "best_adapter_kshot", [1] * 2 + [0] * (n - 2))
        with open(f"{o}/run.ini", "w") as f:
            f.write("model = m\n[select-data]\nc = 256\ntau = 0.9\n[train]\nepochs = 3\n")
PY
"$PYTHON" "$TOOL" moe "$WORK/out" "$WORK/out/demo_evals" --json "$WORK/t.json" > "$WORK/table" ||
  { cat "$WORK/table"; fail "the table"; }
grep -q "K = 16, C = 256," "$WORK/table" || fail "C not in the header: $(head -1 "$WORK/table")"
"$PYTHON" - "$WORK/t.json" <<'PY' || fail "the numbers: $(cat "$WORK/table")"
import json, sys
t = json.load(open(sys.argv[1]))
a, b = t["a"], t["b"]
assert a["draws"] == ["draw0", "draw1"] and b["draws"] == ["draw0"], (a["draws"], b["draws"])
assert [round(x, 6) for x in a["accuracy"]["full"]] == [0.2, 0.3], a["accuracy"]["full"]
assert [round(x, 6) for x in a["accuracy"]["full_prompt"]] == [0.5, 0.6], a["accuracy"]
assert abs(a["differences"]["full_prompt-full"]["point"] - 0.3) < 1e-9, a["differences"]
assert abs(a["differences"]["full_prompt-ft_prompt"]["point"] - 0.15) < 1e-9, a["differences"]  # (0.5 + 0.6)/2 - 0.4
avg = t["average"]
assert avg["tasks"] == ["a", "b"], avg
d = avg["differences"]["full_prompt-ft_prompt"]
assert d["draws"] == 1, d  # only draw 0 has both tasks
assert abs(d["point"] - ((0.5 - 0.4) + (0.8 - 0.4)) / 2) < 1e-9, d
assert d["low"] <= d["point"] <= d["high"], d
PY
grep -q "^| average of a, b | +30.0 \[" "$WORK/table" || fail "the average line: $(grep average "$WORK/table")"

"$PYTHON" "$TOOL" lora "$WORK/out" "$WORK/out/demo_evals" --json "$WORK/l.json" > "$WORK/table" ||
  { cat "$WORK/table"; fail "the lora table"; }
"$PYTHON" - "$WORK/l.json" <<'PY' || fail "the lora numbers: $(cat "$WORK/table")"
import json, sys
t = json.load(open(sys.argv[1]))
assert sorted(t) == ["a"], sorted(t)  # task b has no selected-data LoRA: no row, no average
a = t["a"]
assert [round(x, 6) for x in a["accuracy"]["lora"]] == [0.7, 0.7], a["accuracy"]
assert abs(a["differences"]["full-lora"]["point"] - (0.25 - 0.7)) < 1e-9, a["differences"]
assert abs(a["differences"]["lora-ft"]["point"] - 0.5) < 1e-9, a["differences"]
assert "lora-random" not in a["differences"], a["differences"]  # no random_moe row in these files
PY

"$PYTHON" - "$WORK" <<'PY' || fail "making the validation files"
import sys
w = sys.argv[1]
from evfiles import ev
# validation, 10 examples: e5_lr5e-4 gets 3 right everywhere, e2_lr1e-2 5 on task a and 2 on b
# (average 3.5), e5_lr2e-3 9 on a's draw 0 only, the one cell the others lack besides a's draw 1
right = {"e5_lr5e-4": {"a": 3, "b": 3}, "e2_lr1e-2": {"a": 5, "b": 2}, "e5_lr2e-3": {"a": 1, "b": 1}}
for s, per in right.items():
    for task in ("a", "b"):
        for d in (0, 1):
            if task == "a" and d == 1 and s != "e5_lr5e-4":
                continue  # a's draw 1: one setting only, so not in the average
            k = 9 if (s == "e5_lr2e-3" and task == "a" and d == 0) else per[task]
            if s == "e5_lr5e-4" and task == "a" and d == 1:
                k = 10
            ev(f"{w}/ft/val/{s}/{task}/draw{d}/eval.h5", s, [1] * k + [0] * (10 - k))
# a test file that would favour e5_lr2e-3 if it were read
ev(f"{w}/ft/test/a/draw0/eval.h5", "ft_tuned", [1] * 10)
with open(f"{w}/ft/test/a/draw0/run.ini", "w") as f:
    f.write("model = m\n[select-data]\nc = 256\n")
ev(f"{w}/ft/demo_evals/runs/a/draw0/eval.h5", "moe", [1] * 4 + [0] * 6)
ev(f"{w}/ft/demo_evals/runs/a/draw0/eval_baselines.h5", "best_adapter_kshot", [1] * 1 + [0] * 9)
PY
"$PYTHON" "$TOOL" ft-val "$WORK/ft" --json "$WORK/v.json" > "$WORK/table" || { cat "$WORK/table"; fail "the ft-val table"; }
# averages on the common cells (a0, b0, b1): e5_lr5e-4 (3+3+3)/3, e2_lr1e-2 (5+2+2)/3, e5_lr2e-3 (9+1+1)/3
grep -q "^chosen: 5:2e-3$" "$WORK/table" || fail "the chosen setting: $(cat "$WORK/table")"
"$PYTHON" - "$WORK/v.json" <<'PY' || fail "the ft-val numbers: $(cat "$WORK/table")"
import json, sys
t = json.load(open(sys.argv[1]))
s = t["settings"]
assert abs(s["e5_lr5e-4"]["average"] - 0.3) < 1e-9, s  # a's draw 1 (10 of 10) is not in it
assert abs(s["e5_lr2e-3"]["average"] - 11 / 30) < 1e-9, s
assert t["chosen"] == "e5_lr2e-3", t["chosen"]
PY
"$PYTHON" "$TOOL" ft "$WORK/ft/test" "$WORK/ft/demo_evals" --json "$WORK/f.json" > "$WORK/table" ||
  { cat "$WORK/table"; fail "the ft table"; }
"$PYTHON" - "$WORK/f.json" <<'PY' || fail "the ft numbers: $(cat "$WORK/table")"
import json, sys
a = json.load(open(sys.argv[1]))["a"]
assert abs(a["differences"]["full-tuned"]["point"] + 0.6) < 1e-9, a["differences"]
assert abs(a["differences"]["tuned-ft"]["point"] - 0.9) < 1e-9, a["differences"]
PY
# bench/moe_sweep_smollm2.sh's layout: the MoE's row "moe" (the archive keeps only the eval files)
"$PYTHON" - "$WORK" <<'PY' || fail "making the MoE validation files"
import sys
w = sys.argv[1]
from evfiles import ev_rows
for s, k in (("e3_lr5e-4", 2), ("e3_lr2e-3", 6)):
    ev_rows(f"{w}/moe/val/{s}/a/draw0/eval.h5", ["base", "moe"], [[1] * 9 + [0], [1] * k + [0] * (10 - k)])
PY
"$PYTHON" "$TOOL" ft-val "$WORK/moe" > "$WORK/table" || { cat "$WORK/table"; fail "the MoE ft-val table"; }
grep -q "the full method's MoE" "$WORK/table" || fail "the MoE table's header: $(head -1 "$WORK/table")"
grep -q "^chosen: 3:2e-3$" "$WORK/table" || fail "the MoE's chosen setting (the row moe, not base): $(cat "$WORK/table")"
# moe-tuned: task a has draws 0 and 1 (the tuned fine-tuning on draw 0 only), task b draw 0
"$PYTHON" - "$WORK" <<'PY' || fail "making the moe-tuned files"
import sys
w = sys.argv[1]
from evfiles import ev
right = {("a", 0): (6, 8, 4, 2), ("a", 1): (7, None, 5, 3), ("b", 0): (5, 2, 5, 1)}
for (task, d), (tuned, ft_tuned, full, ft) in right.items():
    o, demo = f"{w}/mt/test/{task}/draw{d}", f"{w}/mt/demo_evals/runs/{task}/draw{d}"
    ev(f"{o}/eval.h5", "moe", [1] * tuned + [0] * (10 - tuned))
    if ft_tuned is not None:
        ev(f"{o}/eval_ft_tuned.h5", "ft_tuned", [1] * ft_tuned + [0] * (10 - ft_tuned))
    ev(f"{demo}/eval.h5", "moe", [1] * full + [0] * (10 - full))
    ev(f"{demo}/eval_baselines.h5", "best_adapter_kshot", [1] * ft + [0] * (10 - ft))
PY
"$PYTHON" "$TOOL" moe-tuned "$WORK/mt/test" "$WORK/mt/demo_evals" --json "$WORK/mt.json" > "$WORK/table" ||
  { cat "$WORK/table"; fail "the moe-tuned table"; }
"$PYTHON" - "$WORK/mt.json" <<'PY' || fail "the moe-tuned numbers: $(cat "$WORK/table")"
import json, sys
t = json.load(open(sys.argv[1]))
a, avg = t["a"]["differences"], t["average"]["differences"]
assert t["a"]["accuracy"]["full_tuned"] == [0.6, 0.7], t["a"]["accuracy"]
assert a["full_tuned-ft_tuned"]["draws"] == 1 and abs(a["full_tuned-ft_tuned"]["point"] + 0.2) < 1e-9, a
assert a["full_tuned-full"]["draws"] == 2 and abs(a["full_tuned-full"]["point"] - 0.2) < 1e-9, a
assert abs(a["ft_tuned-ft"]["point"] - 0.6) < 1e-9, a
# the average over a and b on draw 0, the one draw both tasks have: (6 - 8 + 5 - 2) / 20
assert abs(avg["full_tuned-ft_tuned"]["point"] - 0.05) < 1e-9, avg
PY
echo ok

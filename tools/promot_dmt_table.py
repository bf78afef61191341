#!/usr/bin/env python3
"""The ProMoT and DMT tables (issue 15) from bench/promot_smollm2.sh's and
bench/dmt_smollm2.sh's output folders.

  promot_dmt_table.py promot OUT [--json FILE]
      rows: base, plain fine-tuning, prompt tuning alone, prompt + LoRA jointly, ProMoT;
      columns: in-task accuracy and macro-F1 (yesno, zero-shot, each model with its own prompt), out-of-task
      accuracy per task (1-shot, no soft prompt) and their average, and format leakage: the share
      of out-of-task replies that answer yes or no. Mean ± sd over the seeds found; then ProMoT
      minus each other row with a paired-bootstrap 95% interval (seeds × test examples).
  promot_dmt_table.py dmt OUT [--json FILE]
      rows: base, specialised only, general only, mixed (one stage), sequential, DMT at each k;
      columns: specialised (held-out arith rows; math, the transfer to word problems) and general
      (chat, yesno, their average) accuracy, 1-shot.
      Mean ± sd over seeds; DMT at each k minus sequential and minus mixed with intervals; and
      OUT/dmt.png, the trade-off (general average against specialised accuracy, sd bars).
  promot_dmt_table.py moe OUT DEMO_WORK_DIR [--json FILE]
      bench/promot_moe_smollm2.sh: per task, the full method with ProMoT's soft prompt against
      the demo's full method without it, the soft prompt alone (the base model with it), and the
      control: the demo's best adapter + K-shot fine-tuning without and with the same prompt;
      mean ± sd over draws and paired-bootstrap intervals. DEMO_WORK_DIR may be OUT/demo_evals
      (the demo's eval files that the bench copies there and archives).
  promot_dmt_table.py ft-val OUT [--json FILE]
      bench/kshot_ft_sweep_smollm2.sh (and bench/moe_sweep_smollm2.sh, row moe): the validation
      accuracy of the best adapter + K-shot fine-tuning (or of the full method's MoE) for each
      setting (OUT/val/eE_lrLR/TASK/drawD/eval.h5), mean ± sd over draws per
      task and averaged over tasks; prints "chosen: E:LR", the setting with the best average on the
      draws and tasks every setting has (the earliest listed on a tie). Reads no test result.
  promot_dmt_table.py ft OUT/test DEMO_WORK_DIR [--json FILE]
      the chosen setting on the test set beside the demo's full method, its K-shot fine-tuning with
      the profile's setting and its K-shot-only MoE; as moe, with the average over tasks.
  promot_dmt_table.py moe-tuned OUT/test DEMO_WORK_DIR [--json FILE]
      bench/moe_sweep_smollm2.sh with FT_SWEEP: the full method with its MoE's setting chosen on
      validation (OUT/test/TASK/drawD/eval.h5, row moe) beside the K-shot fine-tuning tuned the
      same way (eval_ft_tuned.h5, row ft_tuned) and the demo's two rows with the profile's
      setting; as moe, with the average over tasks.
  promot_dmt_table.py lora OUT DEMO_WORK_DIR [--json FILE]
      bench/selected_lora_smollm2.sh: per task, the full method against one LoRA (the best bank
      adapter) fine-tuned on the same K-shot + selected data, with best adapter + K-shot FT and
      the random-adapter MoE beside them; as moe, with the average over tasks.
"""
import glob
import json
import os
import re
import sys

import h5py
import numpy as np

YESNO = re.compile(r"^\W*(yes|no)\b|\bthe answer is \W*(yes|no)\b", re.IGNORECASE)


def load(path, row):
    """correct[samples], replies[samples] of model `row` of an eval.h5; None if not there."""
    if not os.path.exists(path):
        return None
    with h5py.File(path, "r") as f:
        models = list(f["models"].asstr()[:])
        if row not in models:
            return None
        m = models.index(row)
        n = f["samples"].shape[0]
        reply = np.array(f["reply"].asstr()[:]).reshape(len(models), n)[m] if "reply" in f else None
        return {"correct": f["correct"][()][m].astype(float), "reply": reply, "f1": float(f["macro_f1"][m])}


def fmt(values):
    v = [x for x in values if x is not None and not np.isnan(x)]
    if not v:
        return "-"
    return f"{100 * np.mean(v):.1f} ± {100 * np.std(v, ddof=1):.1f}" if len(v) > 1 else f"{100 * v[0]:.1f}"


def boot_diff(a, b, seed=0, n=2000):
    """a, b: per seed, a list of per-task correctness vectors (the same examples). The mean
    over seeds and tasks of mean(a - b), with a 95% interval from resampling seeds, then
    examples within each seed and task."""
    diffs = [[x - y for x, y in zip(sa, sb)] for sa, sb in zip(a, b)]
    point = float(np.mean([np.mean([d.mean() for d in s]) for s in diffs]))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n):
        seeds = rng.integers(0, len(diffs), len(diffs))
        boots.append(np.mean([np.mean([d[rng.integers(0, len(d), len(d))].mean() for d in diffs[s]]) for s in seeds]))
    return point, float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def seeds_of(out):
    return sorted((d for d in os.listdir(out) if re.fullmatch(r"seed\d+", d)), key=lambda d: int(d[4:]))


def promot(out):
    tasks = ["mc", "math", "chat"]
    rows = [("base model", None), ("plain fine-tuning (LoRA)", "ft"), ("prompt tuning alone", "pt"),
            ("prompt + LoRA jointly", "joint"), ("ProMoT (prompt, then LoRA)", "promot")]
    base_in = load(f"{out}/base/in_yesno.h5", "base")
    base_out = {t: load(f"{out}/base/out_{t}.h5", "base") for t in tasks}
    per = {name: [] for name, _ in rows}  # per seed: {"in": correct, "out": {task: res}}
    used = []
    for s in seeds_of(out):
        d = f"{out}/{s}"
        got = {"base model": {"in": base_in, "out": base_out},
               "plain fine-tuning (LoRA)": {"in": load(f"{d}/in_ft.h5", "ft"),
                                            "out": {t: load(f"{d}/out_{t}.h5", "ft") for t in tasks}},
               "prompt tuning alone": {"in": load(f"{d}/in_pt.h5", "base"), "out": base_out},
               "prompt + LoRA jointly": {"in": load(f"{d}/in_joint.h5", "joint"),
                                         "out": {t: load(f"{d}/out_{t}.h5", "joint") for t in tasks}},
               "ProMoT (prompt, then LoRA)": {"in": load(f"{d}/in_promot.h5", "promot"),
                                              "out": {t: load(f"{d}/out_{t}.h5", "promot") for t in tasks}}}
        if any(g["in"] is None or any(v is None for v in g["out"].values()) for g in got.values()):
            continue  # a seed not finished
        used.append(s)
        for name in per:
            per[name].append(got[name])
    if not used:
        sys.exit(f"{out}: no finished seed")
    table = {}
    for name, _ in rows:
        runs = per[name]
        cols = {"in-task yesno": [r["in"]["correct"].mean() for r in runs], "in-task F1": [r["in"]["f1"] for r in runs]}
        for t in tasks:
            cols[t] = [r["out"][t]["correct"].mean() for r in runs]
        cols["out-of-task avg"] = [np.mean([r["out"][t]["correct"].mean() for t in tasks]) for r in runs]
        cols["leakage"] = [np.mean([bool(YESNO.search(x)) for t in tasks for x in r["out"][t]["reply"]]) for r in runs]
        table[name] = cols
    n = len(base_in["correct"])
    head = ["in-task yesno", "in-task F1"] + tasks + ["out-of-task avg", "leakage"]
    lines = [f"test accuracy (%), SmolLM2-135M-Instruct, {n} test examples per task, seeds: {', '.join(used)}"
             " (mean ± sd)", "", "| row | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, cols in table.items():
        lines.append(f"| {name} | " + " | ".join(fmt(cols[h]) for h in head) + " |")
    lines.append("\nin task: yesno zero-shot, each model with its own soft prompt; out of task: 1-shot, no soft prompt"
                 " (so prompt tuning alone is the base model there); leakage: out-of-task replies answering yes/no.")
    lines.append("\nProMoT − ... (points, paired-bootstrap 95% interval over seeds × test examples)")
    lines.append("| row | in-task | out-of-task avg |")
    lines.append("|---|---|---|")
    diffs = {}
    p = per["ProMoT (prompt, then LoRA)"]
    for name, _ in rows[:-1]:
        q = per[name]
        din = boot_diff([[r["in"]["correct"]] for r in p], [[r["in"]["correct"]] for r in q])
        dout = boot_diff([[r["out"][t]["correct"] for t in tasks] for r in p],
                         [[r["out"][t]["correct"] for t in tasks] for r in q])
        diffs[name] = {"in": din, "out": dout}
        f = lambda d: f"{100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]"
        lines.append(f"| − {name} | {f(din)} | {f(dout)} |")
    return "\n".join(lines), {"seeds": used, "table": table, "promot_minus": diffs}


DMT_ROWS = [("base model", None), ("specialised only", "special"), ("general only", "general"),
            ("mixed, one stage", "mixed"), ("sequential (special, then general)", "sequential")]


def k_value(name):
    num, _, den = name[len("dmt-k"):].partition("_")
    return float(num) / float(den or 1)


def dmt(out):
    general = ["chat", "yesno"]
    tasks = ["arith", "math"] + general
    used, per = [], {}
    k_names = set()
    for s in seeds_of(out):  # the DMT rows are the models evaluated (the runs/ folders need not be there)
        if os.path.exists(f"{out}/{s}/math.h5"):
            with h5py.File(f"{out}/{s}/math.h5", "r") as f:
                k_names |= {m for m in f["models"].asstr()[:] if m.startswith("dmt-k")}
    rows = DMT_ROWS + [(f"DMT, k = {n[len('dmt-k'):].replace('_', '/')}", n) for n in
                       sorted(k_names, key=k_value, reverse=True)]
    for s in seeds_of(out):
        got = {}
        for name, row in rows:
            # arith's test is per seed (the rows the seed did not train on): its base row too
            got[name] = {t: load(f"{out}/{s}/{t}.h5", "base") if row is None and t == "arith" else
                         load(f"{out}/base/{t}.h5", "base") if row is None else load(f"{out}/{s}/{t}.h5", row)
                         for t in tasks}
        if any(v is None for g in got.values() for v in g.values()):
            continue
        used.append(s)
        for name in got:
            per.setdefault(name, []).append(got[name])
    if not used:
        sys.exit(f"{out}: no finished seed")
    table = {}
    for name, _ in rows:
        r = per[name]
        cols = {t: [x[t]["correct"].mean() for x in r] for t in tasks}
        cols["general avg"] = [np.mean([x[t]["correct"].mean() for t in general]) for x in r]
        table[name] = cols
    n = len(per["base model"][0]["math"]["correct"])
    head = ["arith", "math", "chat", "yesno", "general avg"]
    lines = [f"test accuracy (%), SmolLM2-135M-Instruct, 1-shot, {n} test examples per task, seeds: "
             f"{', '.join(used)} (mean ± sd); specialised: arith (held-out rows of the specialised data's family) and "
             "math (word problems: transfer); general: chat, yesno", "",
             "| row | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, cols in table.items():
        lines.append(f"| {name} | " + " | ".join(fmt(cols[h]) for h in head) + " |")
    lines.append("\nDMT − ... (points, paired-bootstrap 95% interval over seeds × test examples)")
    lines.append("| row | arith | math | general avg |")
    lines.append("|---|---|---|---|")
    diffs = {}
    f = lambda d: f"{100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]"
    for name, row in rows:
        if not row or not row.startswith("dmt-k"):
            continue
        for other in ("sequential (special, then general)", "mixed, one stage"):
            a, b = per[name], per[other]
            da = boot_diff([[x["arith"]["correct"]] for x in a], [[x["arith"]["correct"]] for x in b])
            dm = boot_diff([[x["math"]["correct"]] for x in a], [[x["math"]["correct"]] for x in b])
            dg = boot_diff([[x[t]["correct"] for t in general] for x in a], [[x[t]["correct"] for t in general] for x in b])
            diffs[f"{name} - {other}"] = {"arith": da, "math": dm, "general": dg}
            lines.append(f"| {name} − {other.split(' (')[0]} | {f(da)} | {f(dm)} | {f(dg)} |")
    plot(table, f"{out}/dmt.png")
    lines.append(f"\nplot: {out}/dmt.png")
    return "\n".join(lines), {"seeds": used, "table": table, "dmt_minus": diffs}


def diff_cells(diffs, draws, note):
    """Each of `diffs` (a, b, label) over `draws` (per draw: row -> its per-task correctness
    vectors): the table cell (a paired-bootstrap interval, plus note(number of draws used)) and
    its numbers, on the draws that have both rows; "-" where none has."""
    cells, data = [], {}
    for a, b, _ in diffs:
        both = [g for g in draws if a in g and b in g]
        if not both:
            cells.append("-")
            continue
        r = boot_diff([g[a] for g in both], [g[b] for g in both])
        data[f"{a}-{b}"] = {"draws": len(both), "point": r[0], "low": r[1], "high": r[2]}
        cells.append(f"{100 * r[0]:+.1f} [{100 * r[1]:+.1f}, {100 * r[2]:+.1f}]" + note(len(both)))
    return cells, data


def per_task_keys(per_task, d):
    """The rows that every task has on draw d."""
    return set.intersection(*(set(p[d]) for p in per_task.values()))


def compare_runs(out, demo, rows, diffs, required):
    """Per task folder of OUT (and drawD under it): the accuracy of each of `rows` (key, label,
    where: "out" or "demo", eval file, model row), mean ± sd over the draws that have every
    `required` row, and each of `diffs` (a, b, label) as a paired-bootstrap interval over the
    draws that have both; then the same differences averaged over tasks, on the draws every
    task has. Returns the table's text and its numbers."""
    sizes = sorted({m.group(1) for ini in glob.glob(f"{out}/*/draw*/run.ini")
                    for m in [re.search(r"\[select-data\][^\[]*?\bc = (\d+)", open(ini).read())] if m})
    lines = ["test accuracy (%), SmolLM2-135M-Instruct, K = 16" + (f", C = {', '.join(sizes)}" if sizes else "") +
             ", the demo's test sets (mean ± sd over draws)", "",
             "| task | draws | " + " | ".join(r[1] for r in rows) + " |", "|---|---|" + "---|" * len(rows)]
    diff_lines = ["", "differences, points [paired-bootstrap 95% interval over draws and test examples]", "",
                  "| task | " + " | ".join(f"{label} ({a} − {b})" for a, b, label in diffs) + " |",
                  "|---|" + "---|" * len(diffs)]
    data, per_task = {}, {}
    for task in sorted(os.listdir(out)):
        if not os.path.isdir(f"{out}/{task}") or task == "demo_evals":
            continue
        per = {}  # draw -> {row: correct}
        for d in sorted(os.listdir(f"{out}/{task}")):
            got = {key: load(f"{out if where == 'out' else demo + '/runs'}/{task}/{d}/{file}", model)
                   for key, _, where, file, model in rows}
            got = {k: v["correct"] for k, v in got.items() if v is not None}
            if all(k in got for k in required):
                per[d] = got
        if not per:
            continue
        acc = {k: [g[k].mean() for g in per.values() if k in g] for k, *_ in rows}
        n_draws = {k: len(v) for k, v in acc.items()}
        cells = [f"{fmt(acc[k])}" + (f" ({n_draws[k]})" if 0 < n_draws[k] < len(per) else "") for k, *_ in rows]
        lines.append(f"| {task} | {len(per)} | " + " | ".join(cells) + " |")
        dcells, ddata = diff_cells(diffs, [{k: [v] for k, v in g.items()} for g in per.values()],
                                   lambda n: f" ({n} draws)" if n < len(per) else "")
        diff_lines.append(f"| {task} | " + " | ".join(dcells) + " |")
        data[task] = {"draws": sorted(per), "accuracy": acc, "differences": ddata}
        per_task[task] = per
    if not data:
        sys.exit(f"{out}: no finished run")
    # the average over tasks, on the draws every task has with both rows of a comparison
    if len(per_task) > 1:
        draws = sorted(set.intersection(*(set(p) for p in per_task.values())))
        # per draw, each row's per-task vectors (a row only where every task has it)
        rows_by_draw = [{k: [p[d][k] for p in per_task.values()] for k in per_task_keys(per_task, d)} for d in draws]
        dcells, ddata = diff_cells(diffs, rows_by_draw, lambda n: f" ({n} draw{'s' * (n > 1)})")
        diff_lines.append("| average of " + ", ".join(per_task) + " | " + " | ".join(dcells) + " |")
        data["average"] = {"tasks": list(per_task), "differences": ddata}
    lines.append("(a number in brackets after a cell: the draws it covers, where fewer than the task's)")
    return "\n".join(lines + diff_lines), data


def moe(out, demo):
    """The full method with ProMoT's soft prompt (OUT/TASK/drawD/eval.h5, bench/promot_moe_smollm2.sh)
    against the full method without it (DEMO/runs/TASK/drawD/eval.h5), the soft prompt alone, and
    the control where the bench made it: the demo's best adapter + K-shot fine-tuning
    (DEMO/runs/TASK/drawD/eval_baselines.h5) and the same trained with the soft prompt
    (OUT/TASK/drawD/eval_control.h5). Each comparison on the draws that have both of its rows."""
    rows = [("full", "full method", "demo", "eval.h5", "moe"),
            ("full_prompt", "full method + soft prompt", "out", "eval.h5", "moe"),
            ("prompt", "soft prompt alone (base model)", "out", "eval_prompt_only.h5", "base"),
            ("ft", "best adapter + K-shot FT", "demo", "eval_baselines.h5", "best_adapter_kshot"),
            ("ft_prompt", "best adapter + K-shot FT + soft prompt", "out", "eval_control.h5", "best_adapter_kshot_prompt")]
    diffs = [("full_prompt", "full", "the prompt's gain on the MoE"),
             ("full_prompt", "prompt", "the MoE's gain under the prompt"),
             ("ft_prompt", "ft", "the prompt's gain on K-shot FT"),
             ("full_prompt", "ft_prompt", "MoE + prompt vs K-shot FT + prompt"),
             ("full", "ft_prompt", "full method vs K-shot FT + prompt")]
    return compare_runs(out, demo, rows, diffs, ("full_prompt", "full"))


def lora(out, demo):
    """bench/selected_lora_smollm2.sh: the full method (a MoE of the selected experts trained on
    the K-shot set + the selected open data) against one LoRA, the best bank adapter, trained on
    the same data with the same options (OUT/TASK/drawD/eval_selected_lora.h5), and against the
    demo's rows that share one of the two: best adapter + K-shot fine-tuning (same start, K-shot
    data only) and the MoE of random adapters (same data, other experts)."""
    rows = [("full", "full method", "demo", "eval.h5", "moe"),
            ("lora", "best adapter + FT on the same data", "out", "eval_selected_lora.h5", "best_adapter_selected"),
            ("ft", "best adapter + K-shot FT", "demo", "eval_baselines.h5", "best_adapter_kshot"),
            ("random", "MoE of random adapters", "demo", "eval_baselines.h5", "random_moe")]
    diffs = [("full", "lora", "the MoE over one LoRA on the same data"),
             ("lora", "ft", "the selected data for one LoRA"),
             ("full", "ft", "full method vs K-shot FT"),
             ("lora", "random", "one LoRA vs random MoE, same data")]
    return compare_runs(out, demo, rows, diffs, ("full", "lora"))


def ft_val(out):
    """bench/kshot_ft_sweep_smollm2.sh's validation evaluations: per setting eE_lrLR, the accuracy
    of its adapter (row eE_lrLR) per task, mean ± sd over draws; the average over tasks on the
    (task, draw) cells that every setting has; and the chosen setting, the best average."""
    settings = sorted(os.listdir(f"{out}/val"), key=lambda s: (float(s.split("_lr")[1]), int(s[1:].split("_")[0])))
    acc, moe_rows = {}, 0  # setting -> {(task, draw): accuracy}; cells read from a row "moe"
    for s in settings:
        acc[s] = {}
        for path in glob.glob(f"{out}/val/{s}/*/draw*/eval.h5"):
            task, draw = path.split("/")[-3:-1]
            got = load(path, s)  # a fine-tuned adapter's row (kshot_ft_sweep), else the MoE's
            if got is None:
                got = load(path, "moe")
                moe_rows += got is not None
            if got is not None:
                acc[s][(task, draw)] = got["correct"].mean()
    cells = set.intersection(*(set(a) for a in acc.values())) if acc else set()
    if not cells:
        sys.exit(f"{out}/val: no (task, draw) that every setting has")
    tasks = sorted({t for t, _ in cells})
    draws = sorted({d for _, d in cells})
    what = "the full method's MoE" if moe_rows else "best adapter + K-shot fine-tuning"
    lines = [f"validation accuracy (%), {what}, {len(draws)} draws (mean ± sd over draws)", "",
             "| epochs | lr | " + " | ".join(tasks) + " | average |", "|---|---|" + "---|" * (len(tasks) + 1)]
    data, best = {}, None
    for s in settings:
        per_task = {t: [acc[s][(t, d)] for d in draws if (t, d) in cells] for t in tasks}
        per_draw = [np.mean([acc[s][(t, d)] for t in tasks]) for d in draws if all((t, d) in cells for t in tasks)]
        average = float(np.mean([acc[s][c] for c in cells]))
        e, lr = s[1:].split("_lr")
        lines.append(f"| {e} | {lr} | " + " | ".join(fmt(per_task[t]) for t in tasks) + f" | {fmt(per_draw)} |")
        data[s] = {"per_task": per_task, "average": average}
        if best is None or average > data[best]["average"]:
            best = s
    e, lr = best[1:].split("_lr")
    lines += ["", f"(average: over tasks and draws; sd over draws of the task average; {len(cells)} task-draws)",
              f"chosen: {e}:{lr}"]
    return "\n".join(lines), {"settings": data, "chosen": best}


def ft(out, demo):
    """The chosen K-shot fine-tuning setting (OUT/TASK/drawD/eval.h5, row ft_tuned) on the test set
    beside the demo's rows that use the same K-shot set: the full method, its best adapter + K-shot
    fine-tuning with the profile's setting and the selected experts trained on the K-shot set alone."""
    rows = [("full", "full method", "demo", "eval.h5", "moe"),
            ("tuned", "best adapter + K-shot FT, tuned on validation", "out", "eval.h5", "ft_tuned"),
            ("ft", "best adapter + K-shot FT, profile's setting", "demo", "eval_baselines.h5", "best_adapter_kshot"),
            ("kshot_moe", "MoE of selected experts, K-shot only", "demo", "eval_baselines.h5", "moe_kshot")]
    diffs = [("full", "tuned", "full method vs tuned K-shot FT"),
             ("full", "ft", "full method vs K-shot FT, profile's setting"),
             ("tuned", "ft", "the tuning's gain")]
    return compare_runs(out, demo, rows, diffs, ("full", "tuned"))


def moe_tuned(out, demo):
    """Both methods tuned on validation, on the test set: the full method whose MoE's epochs and lr
    bench/moe_sweep_smollm2.sh chose (OUT/TASK/drawD/eval.h5, row moe) against the best adapter +
    K-shot fine-tuning whose setting bench/kshot_ft_sweep_smollm2.sh chose (eval_ft_tuned.h5, row
    ft_tuned), with the demo's full method and fine-tuning at the profile's setting beside them."""
    rows = [("full_tuned", "full method, MoE tuned on validation", "out", "eval.h5", "moe"),
            ("ft_tuned", "best adapter + K-shot FT, tuned on validation", "out", "eval_ft_tuned.h5", "ft_tuned"),
            ("full", "full method, profile's setting", "demo", "eval.h5", "moe"),
            ("ft", "best adapter + K-shot FT, profile's setting", "demo", "eval_baselines.h5", "best_adapter_kshot")]
    diffs = [("full_tuned", "ft_tuned", "both tuned: full method vs K-shot FT"),
             ("full_tuned", "full", "the MoE tuning's gain"),
             ("ft_tuned", "ft", "the fine-tuning's tuning gain")]
    return compare_runs(out, demo, rows, diffs, ("full_tuned",))


def plot(table, path):
    """General average (x) against specialised accuracy (arith, y), mean with sd bars; DMT's points
    joined in order of k. Pillow only (no matplotlib on the machines this runs on)."""
    from PIL import Image, ImageDraw
    W, H, L, R, T, B = 760, 520, 70, 230, 30, 60
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    sd = lambda v: np.std(v, ddof=1) if len(v) > 1 else 0
    pts = {name: (np.mean(c["general avg"]), np.mean(c["arith"]), sd(c["general avg"]), sd(c["arith"]))
           for name, c in table.items()}
    xs = [p[0] - p[2] for p in pts.values()] + [p[0] + p[2] for p in pts.values()]
    ys = [p[1] - p[3] for p in pts.values()] + [p[1] + p[3] for p in pts.values()]
    x0, x1 = max(0, min(xs) - 0.03), min(1, max(xs) + 0.03)
    y0, y1 = max(0, min(ys) - 0.03), min(1, max(ys) + 0.03)
    X = lambda v: L + (v - x0) / (x1 - x0) * (W - L - R)
    Y = lambda v: H - B - (v - y0) / (y1 - y0) * (H - T - B)
    d.rectangle([L, T, W - R, H - B], outline="black")
    for i in range(6):
        vx, vy = x0 + i * (x1 - x0) / 5, y0 + i * (y1 - y0) / 5
        d.line([X(vx), H - B, X(vx), H - B + 5], fill="black")
        d.text((X(vx) - 12, H - B + 8), f"{100 * vx:.1f}", fill="black")
        d.line([L - 5, Y(vy), L, Y(vy)], fill="black")
        d.text((L - 35, Y(vy) - 6), f"{100 * vy:.1f}", fill="black")
    d.text((L + 60, H - 25), "general accuracy (chat, yesno average), %", fill="black")
    d.text((5, T - 22), "specialised accuracy (held-out arith), %   SmolLM2-135M, DMT trade-off, mean +- sd over seeds",
           fill="black")
    colours = ["gray", "red", "blue", "green", "orange", "purple", "brown", "magenta", "teal", "olive", "navy"]
    dmt_pts = [(name, p) for name, p in pts.items() if name.startswith("DMT")]
    for (_, a), (_, b) in zip(dmt_pts, dmt_pts[1:]):
        d.line([X(a[0]), Y(a[1]), X(b[0]), Y(b[1])], fill="purple", width=1)
    for i, (name, (gx, my, sx, sy)) in enumerate(pts.items()):
        c = colours[i % len(colours)]
        d.line([X(gx - sx), Y(my), X(gx + sx), Y(my)], fill=c)
        d.line([X(gx), Y(my - sy), X(gx), Y(my + sy)], fill=c)
        d.ellipse([X(gx) - 4, Y(my) - 4, X(gx) + 4, Y(my) + 4], fill=c)
        d.rectangle([W - R + 12, T + 8 + 18 * i, W - R + 20, T + 16 + 18 * i], fill=c)
        d.text((W - R + 26, T + 6 + 18 * i), name, fill="black")
    tmp = path + ".partial.png"
    img.save(tmp)
    os.replace(tmp, path)


if __name__ == "__main__":
    one = {"promot": promot, "dmt": dmt, "ft-val": ft_val}  # the modes that take OUT
    two = {"moe": moe, "lora": lora, "ft": ft, "moe-tuned": moe_tuned}  # the modes that take OUT and DEMO_WORK_DIR
    if len(sys.argv) < 3 or sys.argv[1] not in {**one, **two} or (sys.argv[1] in two and len(sys.argv) < 4):
        sys.exit(__doc__)
    if sys.argv[1] in two:
        text, data = two[sys.argv[1]](sys.argv[2], sys.argv[3])
    else:
        text, data = one[sys.argv[1]](sys.argv[2])
    print(text)
    if "--json" in sys.argv:
        json.dump(data, open(sys.argv[sys.argv.index("--json") + 1], "w"), indent=1, default=float)

#!/usr/bin/env python3
"""The PANDA table (issue 16) from bench/panda_smollm2.sh's output folder OUT/TASK/drawD/.

Rows: the LLM zero-shot, few-shot with random K-shot examples, few-shot with the retrieved
examples (no insight), PANDA with the MoE's insights, PANDA with the bank adapter's insights,
and the two experts. Columns per task: accuracy, macro-F1 (choice and yes/no tasks) and the
share of test examples where the row's extracted answer equals the MoE expert's (agree) and
the adapter expert's (agree_a); each as mean ± sd over the draws found. Last, PANDA (MoE) minus
the retrieved-examples row with a paired-bootstrap 95% interval over draws × examples.
usage: tools/panda_table.py OUT_DIR [--json FILE]
"""
import json
import os
import sys

import h5py
import numpy as np

ROWS = [("zero-shot", "eval_zero_shot.h5", "base"), ("few-shot, random", "eval_random.h5", "base"),
        ("few-shot, retrieved", "eval_retrieved.h5", "base"), ("PANDA (MoE insights)", "eval_panda_moe.h5", "base"),
        ("PANDA (adapter insights)", "eval_panda_adapter.h5", "base"), ("expert: MoE", "eval_experts.h5", "moe"),
        ("expert: bank adapter", "eval_experts.h5", 0)]


def load(path, row):
    with h5py.File(path, "r") as f:
        models = list(f["models"].asstr()[:])
        m = row if isinstance(row, int) else models.index(row)
        n = f["samples"].shape[0]
        pred = np.array(f["prediction"].asstr()[:]).reshape(len(models), n)[m]
        return {"acc": float(f["accuracy"][m]), "f1": float(f["macro_f1"][m]), "pred": pred,
                "correct": f["correct"][()][m].astype(float)}


def fmt(values):
    v = [x for x in values if not np.isnan(x)]
    if not v:
        return "-"
    return f"{100 * np.mean(v):.1f} ± {100 * np.std(v, ddof=1):.1f}" if len(v) > 1 else f"{100 * v[0]:.1f}"


def main():
    out = sys.argv[1]
    tasks = sorted(t for t in os.listdir(out) if os.path.isdir(os.path.join(out, t)))
    table, diffs = {}, {}
    for task in tasks:
        draws = sorted(d for d in os.listdir(os.path.join(out, task)) if d.startswith("draw") and all(
            os.path.exists(os.path.join(out, task, d, f)) for _, f, _ in ROWS))
        if not draws:
            continue
        per = {name: [] for name, _, _ in ROWS}
        for d in draws:
            res = {name: load(os.path.join(out, task, d, f), r) for name, f, r in ROWS}
            moe, ad = res["expert: MoE"]["pred"], res["expert: bank adapter"]["pred"]
            for name in per:
                p = res[name]["pred"]
                per[name].append(dict(res[name], agree=float(np.mean(p == moe)), agree_a=float(np.mean(p == ad))))
        table[task] = {"draws": len(draws), "rows": {
            name: {k: [r[k] for r in runs] for k in ("acc", "f1", "agree", "agree_a")} for name, runs in per.items()}}
        a = np.concatenate([r["correct"] for r in per["PANDA (MoE insights)"]])
        b = np.concatenate([r["correct"] for r in per["few-shot, retrieved"]])
        rng = np.random.default_rng(0)
        boots = [np.mean((a - b)[idx]) for idx in (rng.integers(0, len(a), len(a)) for _ in range(2000))]
        diffs[task] = (float(np.mean(a - b)), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)))
    lines = []
    for task, t in table.items():
        lines.append(f"\n{task} ({t['draws']} draw{'s' if t['draws'] > 1 else ''}):\n")
        lines.append("| row | accuracy | macro-F1 | agree (MoE) | agree (adapter) |")
        lines.append("|---|---|---|---|---|")
        for name, cols in t["rows"].items():
            lines.append(f"| {name} | {fmt(cols['acc'])} | {fmt(cols['f1'])} | {fmt(cols['agree'])} | {fmt(cols['agree_a'])} |")
        m, lo, hi = diffs[task]
        lines.append(f"\nPANDA (MoE) − few-shot retrieved: {100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    print("\n".join(lines))
    if "--json" in sys.argv:
        json.dump({"tables": table, "panda_minus_retrieved": diffs}, open(sys.argv[sys.argv.index("--json") + 1], "w"),
                  indent=1)


if __name__ == "__main__":
    main()

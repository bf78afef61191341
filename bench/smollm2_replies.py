"""The replies in the SmolLM2 profile's evaluation files, for the per-task error analyses
(bench/mc_errors_smollm2.py, bench/string_errors_smollm2.py, bench/yesno_errors_smollm2.py).

`kmoe demo` writes WORK/runs/TASK/drawD/eval.h5 (the full method, model "moe"),
eval_baselines.h5 (Table 1's baselines) and, with --tables 2 or 3, eval_ablation.h5 (the
ablations: rp, ra, rp_ra, random_data, cosine); each holds `models`, `samples` (test ids), and `reply` and
`prediction` with one entry per model and sample, model-major.
"""
import json
import os
import sys

import h5py

# The baselines' model names in eval_baselines.h5; the best single adapter is named after the
# bank adapter chosen, which differs per draw, so it becomes one row.
ROWS = ("moe", "base", "best_adapter_kshot", "random_moe", "moe_kshot",
        "rp", "ra", "rp_ra", "random_data", "cosine")


def test_rows(work, task):
    """The task's test rows by id, and the file they come from."""
    path = os.path.join(work, "suite", "tasks", task, "test.jsonl")
    rows = {}
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            row = json.loads(line)
            rows[row["id"]] = (row, line_no)
    return rows, path


def draws_of(work, task, given):
    """The draws given on the command line, or every draw folder of the task."""
    return given or sorted(d for d in os.listdir(os.path.join(work, "runs", task))
                           if d.startswith("draw"))


def replies(work, task, draws):
    """Yields (row name, sample id, reply, prediction) for every model of every draw."""
    for draw in draws:
        for name in ("eval.h5", "eval_baselines.h5", "eval_ablation.h5"):
            path = os.path.join(work, "runs", task, draw, name)
            if not os.path.exists(path):
                continue
            with h5py.File(path, "r") as h:
                models = [m.decode() for m in h["models"][()]]
                samples = [s.decode() for s in h["samples"][()]]
                reply = h["reply"][()]
                prediction = h["prediction"][()]
            n = len(samples)
            if len(reply) != n * len(models) or len(prediction) != n * len(models):
                sys.exit(f"{path}: {len(reply)} replies for {len(models)} models x {n} samples")
            for mi, model in enumerate(models):
                row = model if model in ROWS else "best single adapter"
                for i, sample in enumerate(samples):
                    yield (row, sample, reply[mi * n + i].decode(errors="replace"),
                           prediction[mi * n + i].decode(errors="replace"))

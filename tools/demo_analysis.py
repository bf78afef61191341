#!/usr/bin/python3
"""Why the method wins or loses on a `kmoe demo` work directory (issue 14): per task and
K-shot draw, from the artifacts alone,
- the rows' test accuracy and what they answer (share of each answer, share of replies with
  no extractable answer), so a model that always says "A" or never says anything shows;
- the full method against each baseline example by example: wins (full right, baseline
  wrong), losses, and both right / both wrong;
- the chosen experts with their family, and the families of the selected open data, of the
  top C rows by similarity before dedup, and of the rows dedup dropped (data_selection.h5);
- the router: each expert's share of the routing weight, over all modules (a router that
  stays at 1/N has not learned to route), and the spread over modules;
- the MoE's training loss, first and last step.
usage: tools/demo_analysis.py WORK_DIR [--tag TAG] [TASK...]     (Debian's python3 with h5py and numpy)
  --tag c=256: the runs of `kmoe demo --sizes c=256` (WORK_DIR/runs_c=256) instead of WORK_DIR/runs
"""
import collections
import glob
import json
import os
import sys

import h5py
import numpy as np


def strings(ds):
    return [x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(ds[()])]


def eval_rows(path):
    """name -> (correct [n], prediction [n]) of every model in an eval .h5."""
    out = {}
    with h5py.File(path, "r") as f:
        names = strings(f["models"])
        correct = np.atleast_2d(f["correct"][()])
        pred = f["prediction"][()]
        pred = pred.reshape(len(names), -1) if pred.ndim == 1 else pred
        for m, name in enumerate(names):
            out[name] = (correct[m].astype(int), [p.decode() if isinstance(p, bytes) else str(p) for p in pred[m]])
    return out


def family(path):
    return os.path.basename(path.rstrip("/")).split(".")[0]


def corpus_families(selection):
    """The family of every corpus row, in the order data_selection.h5 indexes them (its
    corpus0, corpus1, ... inputs, each file's lines)."""
    with h5py.File(selection, "r") as f:
        inputs = json.loads(f.attrs["inputs"])
    out = []
    for i in sorted((x for x in inputs if x["name"].startswith("corpus")), key=lambda x: int(x["name"][6:])):
        with open(i["path"]) as f:
            out += [family(i["path"])] * sum(1 for line in f if line.strip())
    return out


def main():
    args = sys.argv[1:]
    work = args.pop(0)
    runs = "runs"
    if "--tag" in args:
        runs = "runs_" + args.pop(args.index("--tag") + 1)
        args.remove("--tag")
    only = set(args)
    labels = {"moe": "full method", "base": "base", "random_moe": "random MoE", "moe_kshot": "K-shot MoE",
              "best_adapter_kshot": "best + K-shot"}
    for run in sorted(glob.glob(os.path.join(work, runs, "*", "draw*"))):
        task, draw = run.split(os.sep)[-2:]
        if only and task not in only:
            continue
        if not os.path.exists(os.path.join(run, "eval.h5")):
            print("== %s %s: not evaluated yet" % (task, draw))
            continue
        rows = {}
        for name in ("eval.h5", "eval_baselines.h5"):
            if os.path.exists(os.path.join(run, name)):
                rows.update(eval_rows(os.path.join(run, name)))
        d0 = os.path.join(os.path.dirname(run), "draw0", "eval_baselines.h5")
        if "base" not in rows and os.path.exists(d0):
            rows["base"] = eval_rows(d0)["base"]
        print("== %s %s (%d test examples)" % (task, draw, len(rows["moe"][0])))
        print("  %-26s %6s %7s  %s" % ("row", "acc%", "no ans%", "answers (share, top 5)"))
        for name, (correct, pred) in rows.items():
            counts = collections.Counter(pred)
            top = ", ".join("%s %.0f%%" % (k or "''", 100 * v / len(pred)) for k, v in counts.most_common(5))
            print("  %-26s %6.1f %7.1f  %s" % (labels.get(name, name), 100 * correct.mean(),
                                               100 * counts.get("", 0) / len(pred), top))
        full = rows["moe"][0]
        print("  full method vs ...          wins losses  both right  both wrong")
        for name, (correct, _) in rows.items():
            if name == "moe":
                continue
            print("  %-26s %5d %6d %11d %11d" % (labels.get(name, name), ((full == 1) & (correct == 0)).sum(),
                                                  ((full == 0) & (correct == 1)).sum(),
                                                  ((full == 1) & (correct == 1)).sum(),
                                                  ((full == 0) & (correct == 0)).sum()))
        with h5py.File(os.path.join(run, "experts.h5"), "r") as f:
            chosen = strings(f["chosen_paths"])
        print("  chosen experts: " + ", ".join(os.path.basename(p) for p in chosen))
        sel = [json.loads(l) for l in open(os.path.join(run, "selected.jsonl"))]
        fams = collections.Counter(os.path.basename(r["_source_file"]).split(".")[0] for r in sel)
        print("  selected open data (%d rows) by family: %s" % (len(sel), ", ".join(
            "%s %d" % kv for kv in fams.most_common())))
        selection = os.path.join(run, "data_selection.h5")
        if os.path.exists(selection):
            fam_of = corpus_families(selection)
            with h5py.File(selection, "r") as f:
                scores, dropped, c = f["scores"][()], f["dropped"][()], int(f.attrs["c"])
            top = collections.Counter(fam_of[i] for i in np.argsort(-scores, kind="stable")[:c])
            print("  top %d by similarity, before dedup: %s" % (c, ", ".join("%s %d" % kv for kv in top.most_common())))
            gone = collections.Counter(fam_of[i] for i in dropped)
            print("  dropped by dedup (%d): %s" % (len(dropped), ", ".join("%s %d" % kv for kv in gone.most_common())))
        with h5py.File(os.path.join(run, "moe.h5"), "r") as f:
            names = strings(f["moe/expert_names"])
            load = f["router_load"][()]  # [modules, experts]
            share = load / load.sum(1, keepdims=True)
            loss = f["metrics/loss"][()]
        total = load.sum(0) / load.sum()
        print("  router share per expert (all modules; uniform %.2f): %s" % (1 / len(names), ", ".join(
            "%s %.3f" % (n, s) for n, s in zip(names, total))))
        print("  per module: largest share %.3f, smallest %.3f; max |share - uniform| %.3f" % (
            share.max(), share.min(), np.abs(share - 1 / len(names)).max()))
        print("  MoE training loss: first %.3f, last %.3f (%d steps)" % (loss[0], loss[-1], len(loss)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The validation runs of `kmoe demo --eval-split validation [--sizes ...]` side by side.

    tools/demo_sizes_table.py WORK_DIR [--rows full,best_adapter_kshot]

Reads WORK_DIR/demo_validation_results.json (the profile's own sizes) and every
WORK_DIR/demo_validation_TAG_results.json (a --sizes run), and prints, for each row of the
demo's Table 1 asked for, its validation accuracy per task and on average under each set of
sizes, with the sizes that give that row its best average marked (on a tie, the profile's own, then the
first in name order): the choice to carry to the
test split. Each row is chosen on its own (the full method's sizes for the full method, the
K-shot fine-tuning's for it), and only on validation: no test file is read.
"""
import argparse
import glob
import json
import os
import sys


def size_text(v):
    """A size as kmoe demo writes it in a --sizes tag (C++ ostream: integers plain, reals %g)."""
    return str(v) if isinstance(v, int) else "%g" % v


def load(work):
    runs = []
    for path in sorted(glob.glob(os.path.join(work, "demo_validation*_results.json"))):
        r = json.load(open(path))
        if r.get("eval_split") != "validation":
            sys.exit("%s: not a validation run (eval_split %r)" % (path, r.get("eval_split")))
        runs.append([r.get("sizes") or "(profile)", r, path])
    # The profile's own sizes first: on a tie they are kept (max() keeps the first).
    runs.sort(key=lambda x: x[0] != "(profile)")
    if not runs:
        sys.exit("%s: no demo_validation*_results.json (run kmoe demo --eval-split validation first)" % work)
    # Label each run by the sizes it ran with against those of the profile's own run, not by
    # its --sizes: a run made before the profile's sizes changed differs from today's profile
    # in more than its --sizes says (kmoe demo records "pipeline_sizes" for that).
    ref = runs[0][1].get("pipeline_sizes") if runs[0][0] == "(profile)" else None
    for run in runs:
        name, r, path = run
        sizes = r.get("pipeline_sizes")
        if ref is None or sizes is None:
            print("%s: no pipeline_sizes in it or in the profile run (kmoe before 2026-12-05); labelled by "
                  "its --sizes, which assumes the profile's sizes have not changed since" % path, file=sys.stderr)
            continue
        if [k for k, _ in sizes] != [k for k, _ in ref]:
            sys.exit("%s: pipeline_sizes keys %s differ from the profile run's" % (path, [k for k, _ in sizes]))
        diff = ",".join("%s=%s" % (k, size_text(v)) for (k, v), (_, v0) in zip(sizes, ref) if v != v0)
        if name == "(profile)" or diff != name:
            run[0] = diff or "(profile)"
    draws = {r["draws"] for _, r, _ in runs}
    if len(draws) > 1:
        sys.exit("%s: the runs have different numbers of K-shot draws (%s): compare runs of the same draws"
                 % (work, sorted(draws)))
    return [(name, r) for name, r, _ in runs]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work_dir")
    ap.add_argument("--rows", default="full,best_adapter_kshot,random_moe,moe_kshot",
                    help="Table 1 row keys, comma-separated")
    a = ap.parse_args()
    runs = load(a.work_dir)
    tasks = runs[0][1]["tasks"]
    for name, r in runs:
        if r["tasks"] != tasks:
            sys.exit("%s: tasks %s differ from %s: run every size on the same tasks" % (name, r["tasks"], tasks))
    width = max(len(n) for n, _ in runs) + 2
    for key in a.rows.split(","):
        rows = []
        for name, r in runs:
            m = [x for x in r["methods"] if x["key"] == key]
            if not m:
                sys.exit("%s: no row %r" % (name, key))
            rows.append((name, m[0]))
        best = max(range(len(rows)), key=lambda i: rows[i][1]["average_percent"])
        print("%s (validation accuracy %%, %d K-shot draw%s)" %
              (rows[0][1]["label"], runs[0][1]["draws"], "s" if runs[0][1]["draws"] > 1 else ""))
        print("  " + "sizes".ljust(width) + "".join("%9s" % t for t in tasks) + "%9s" % "average")
        for i, (name, m) in enumerate(rows):
            cells = "".join("%9.1f" % m["accuracy_percent"][t] for t in tasks)
            print("  " + name.ljust(width) + cells + "%9.1f" % m["average_percent"] + ("  <- chosen" if i == best else ""))
        print()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Where the `mc` answers of the SmolLM2 profile go wrong (issue 14's "why").

Every model's reply on `mc` is a rationale and a letter ("A bee can fly. The answer is A.").
For each model in the evaluation files of the given draws this splits its accuracy into:
  - names an object: the rationale names one of the four choices;
  - right object: the object it names is the gold one (the knowledge the task asks for);
  - letter follows: the letter it gives is the letter of the object it named (the format);
and the accuracy per question ("can fly?", "is big?", ...). Naming a choice at random gives
25% right objects; a model that knows the properties and maps letters gives both near 100.

usage: bench/mc_errors_smollm2.py WORK_DIR [draw0 draw1 ...]   (default: every draw found)
Reads WORK_DIR/suite/tasks/mc/test.jsonl and WORK_DIR/runs/mc/drawD/eval*.h5 (h5py).
"""
import collections
import re
import sys

import smollm2_replies

LETTERS = "ABCD"
# "A bee can fly.", "An owl is small.", "The ship is big." -> the object's name; the base model
# instead starts with a choice as listed ("A. truck\n\nThe answer is A. truck.")
RATIONALE = re.compile(r"\s*(?:A|An|The)?\s*([a-z ]+?) (?:is|can|has|are)\b")
LISTED = re.compile(r"\s*[A-D]\.\s*([a-z]+)")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    work = sys.argv[1]
    tests, test_path = smollm2_replies.test_rows(work, "mc")
    for row, line_no in tests.values():
        if row.get("answer") not in LETTERS or len(row.get("choices", [])) != 4:
            sys.exit(f"{test_path}:{line_no}: not a four-choice row with a letter answer")
    draws = smollm2_replies.draws_of(work, "mc", sys.argv[2:])
    counts = collections.defaultdict(collections.Counter)
    for model, sample, reply, predicted in smollm2_replies.replies(work, "mc", draws):
        t = tests[sample][0]
        c = counts[model]
        gold_object = t["choices"][LETTERS.index(t["answer"])]
        question = t["question"].replace("Which of these ", "")
        c["n"] += 1
        c["correct"] += predicted == t["answer"]
        c["n " + question] += 1
        c["correct " + question] += predicted == t["answer"]
        m = RATIONALE.match(reply) or LISTED.match(reply)
        named = m.group(1).strip() if m else None
        if named not in t["choices"]:
            continue
        c["named"] += 1
        c["right object"] += named == gold_object
        c["letter follows"] += (predicted in LETTERS and
                                t["choices"][LETTERS.index(predicted)] == named)
    questions = sorted({k[2:] for c in counts.values() for k in c if k.startswith("n ")})
    print(f"`mc` test replies, draws {', '.join(draws)} (% of examples)\n")
    print("| model | examples | accuracy | names an object | right object | letter follows | "
          + " | ".join(f"acc. '{q}'" for q in questions) + " |")
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * len(questions))
    for model, c in counts.items():
        pct = lambda k, d="n": 100.0 * c[k] / c[d] if c[d] else float("nan")
        print(f"| {model} | {c['n']} | {pct('correct'):.1f} | {pct('named'):.1f} | "
              f"{pct('right object'):.1f} | {pct('letter follows'):.1f} | "
              + " | ".join(f"{pct('correct ' + q, 'n ' + q):.0f}" for q in questions) + " |")


if __name__ == "__main__":
    main()

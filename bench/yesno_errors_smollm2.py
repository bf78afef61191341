#!/usr/bin/env python3
"""Where the `yesno` answers of the SmolLM2 profile go wrong (issue 14's "why").

Every test question of `yesno` takes two steps, and its gold rationale states both: who holds
what ("Ned has a dog.", "Ted has 8 and Vic has 9."), then one fact ("A dog is small.", "A
bee can fly.", "A drill is a tool.", "8 < 9."); the answer follows from the fact. The trained
models reply the same way ("Ned has a dog. A dog is big. The answer is yes."). For each model
in the evaluation files of the given draws this splits its accuracy into:
  - holder right: the reply's first sentence is the gold one (reading the input);
  - fact right: its second sentence is the gold one (what the model knows: sizes, flying,
    categories, which number is larger);
  - answer follows: the yes/no it gives is the one its own stated fact implies (of the replies
    whose fact reads as one of the four forms);
  - says yes: how often it answers yes (the gold answer is yes in 48% of the rows);
and the accuracy and the share of right facts per kind of question (big, can fly, a category,
more than).

usage: bench/yesno_errors_smollm2.py WORK_DIR [draw0 draw1 ...]   (default: every draw found)
Reads WORK_DIR/suite/tasks/yesno/test.jsonl and WORK_DIR/runs/yesno/drawD/eval*.h5 (h5py).
"""
import collections
import re
import sys

import smollm2_replies

CATEGORY_Q = re.compile(r"Does \w+ have an? (\w+)\?$")
MORE_Q = re.compile(r"Does \w+ have more \w+ than \w+\?$")
IS_A = re.compile(r"^an? (\w+) is an? (\w+)$")
IS_SIZE = re.compile(r"^an? (\w+) is (big|small)$")
CAN_FLY = re.compile(r"^an? (\w+) (can fly|can not fly|cannot fly)$")
COMPARE = re.compile(r"^(\d+) ([<>=]) (\d+)$")


def kind(question):
    """The kind of a test question, or None for a form this script does not know."""
    if question.endswith("something big?"):
        return "big"
    if question.endswith("something that can fly?"):
        return "can fly"
    if MORE_Q.match(question):
        return "more than"
    if CATEGORY_Q.match(question):
        return "category"
    return None


def sentences(text):
    """'Ned has a dog. A dog is big.' -> ['ned has a dog', 'a dog is big'] (articles as 'a')."""
    text = re.sub(r"\s+", " ", text.strip().lower())
    text = re.sub(r"\ban\b", "a", text)
    return [s.strip() for s in text.split(".") if s.strip()]


def implied(question, fact):
    """The answer a stated fact implies for the question, or None when it is not one of the
    four forms (e.g. 'a brush can be used for many things')."""
    k = kind(question)
    if k == "big":
        m = IS_SIZE.match(fact)
        return None if not m else ("yes" if m.group(2) == "big" else "no")
    if k == "can fly":
        m = CAN_FLY.match(fact)
        return None if not m else ("yes" if m.group(2) == "can fly" else "no")
    if k == "category":
        m = IS_A.match(fact)
        return None if not m else ("yes" if m.group(2) == CATEGORY_Q.match(question).group(1) else "no")
    if k == "more than":
        m = COMPARE.match(fact)
        return None if not m else ("yes" if m.group(2) == ">" else "no")
    return None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    work = sys.argv[1]
    tests, test_path = smollm2_replies.test_rows(work, "yesno")
    for row, line_no in tests.values():
        if row.get("answer") not in ("yes", "no") or kind(row.get("instruction", "")) is None:
            sys.exit(f"{test_path}:{line_no}: not a yes/no row of a known question form")
        gold = sentences(row.get("rationale", ""))
        if len(gold) != 2 or implied(row["instruction"], gold[1]) != row["answer"]:
            sys.exit(f"{test_path}:{line_no}: the rationale is not a holder and a fact that imply the answer")
    draws = smollm2_replies.draws_of(work, "yesno", sys.argv[2:])
    counts = collections.defaultdict(collections.Counter)
    for model, sample, reply, predicted in smollm2_replies.replies(work, "yesno", draws):
        t = tests[sample][0]
        c = counts[model]
        k = kind(t["instruction"])
        gold = sentences(t["rationale"])
        said = sentences(re.split(r"the answer is", reply, flags=re.I)[0])
        c["n"] += 1
        c["correct"] += predicted == t["answer"]
        c["says yes"] += predicted == "yes"
        c["n " + k] += 1
        c["correct " + k] += predicted == t["answer"]
        c["holder right"] += len(said) >= 1 and said[0] == gold[0]
        c["fact right"] += len(said) >= 2 and said[1] == gold[1]
        c["fact right " + k] += len(said) >= 2 and said[1] == gold[1]
        answer = implied(t["instruction"], said[1]) if len(said) >= 2 else None
        if answer is not None:
            c["fact readable"] += 1
            c["answer follows"] += predicted == answer
    kinds = ("big", "can fly", "category", "more than")
    gold_yes = collections.Counter(kind(t["instruction"]) for t, _ in tests.values() if t["answer"] == "yes")
    gold_all = collections.Counter(kind(t["instruction"]) for t, _ in tests.values())
    print(f"`yesno` test replies, draws {', '.join(draws)} (% of examples; 'answer follows' of "
          "the replies whose fact is readable)\n")
    print("| model | examples | accuracy | holder right | fact right | answer follows | says yes | "
          + " | ".join(f"acc. '{k}'" for k in kinds) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(kinds))
    for model, c in counts.items():
        pct = lambda k, d="n": 100.0 * c[k] / c[d] if c[d] else float("nan")
        print(f"| {model} | {c['n']} | {pct('correct'):.1f} | {pct('holder right'):.1f} | "
              f"{pct('fact right'):.1f} | {pct('answer follows', 'fact readable'):.1f} | "
              f"{pct('says yes'):.0f} | "
              + " | ".join(f"{pct('correct ' + k, 'n ' + k):.0f}" for k in kinds) + " |")
    print("\n| model | " + " | ".join(f"fact right '{k}'" for k in kinds) + " |")
    print("|---|" + "---:|" * len(kinds))
    for model, c in counts.items():
        print(f"| {model} | " + " | ".join(
            f"{100.0 * c['fact right ' + k] / c['n ' + k]:.0f}" for k in kinds) + " |")
    print("\ngold answer yes, per kind (always 'no' scores the rest): " + ", ".join(
        f"{k} {100.0 * gold_yes[k] / gold_all[k]:.0f}% of {gold_all[k]}" for k in kinds))


if __name__ == "__main__":
    main()

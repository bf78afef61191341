#!/usr/bin/env python3
"""Where the `string` answers of the SmolLM2 profile go wrong (issue 14's "why").

A `string` question composes two operations ("What is sort(upper("kiwi"))?") and the reply
works through them in the suite's rationale form ("kiwi in capitals is KIWI. KIWI sorted is
IIKW. The answer is IIKW."). For each model in the evaluation files of the given draws this
finds every step of that form in its replies and checks it on its own: is the step's output
the operation applied to the step's own input, whatever that input was? So each primitive
(upper, sort, reverse, initials) gets its own success rate, and a wrong answer is traced to the
operation that broke it. It also counts replies whose first step starts from the question's
word exactly (copying) and that take both steps in the right order (the plan).

usage: bench/string_errors_smollm2.py WORK_DIR [draw0 draw1 ...]   (default: every draw found)
Reads WORK_DIR/suite/tasks/string/test.jsonl and WORK_DIR/runs/string/drawD/eval*.h5 (h5py).
"""
import collections
import re
import sys

import smollm2_replies

OPS = {
    "upper": lambda s: s.upper(),
    "sort": lambda s: "".join(sorted(s)),
    "reverse": lambda s: s[::-1],
    "initials": lambda s: "".join(w[0] for w in s.split()),
}
QUESTION = re.compile(r'What is (\w+)\((\w+)\("([^"]*)"\)\)\?')
# One step of a reply, in the suite's rationale form.
STEPS = [
    ("upper", re.compile(r"(\S+) in capitals is (\S+?)\.(?:\s|$)")),
    ("sort", re.compile(r"(\S+) sorted is (\S+?)\.(?:\s|$)")),
    ("reverse", re.compile(r"(\S+) backwards is (\S+?)\.(?:\s|$)")),
    ("initials", re.compile(r"The first letters are ([^.]*)\.(?:\s|$)")),
]


def steps_of(reply):
    """The steps of a reply in order: (operation, input or None, output)."""
    found = []
    for op, pattern in STEPS:
        for m in pattern.finditer(reply):
            if op == "initials":
                found.append((m.start(), op, None, m.group(1).replace(",", "").replace(" ", "")))
            else:
                found.append((m.start(), op, m.group(1), m.group(2)))
    return [s[1:] for s in sorted(found)]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    work = sys.argv[1]
    tests, test_path = smollm2_replies.test_rows(work, "string")
    questions = {}
    for sample, (row, line_no) in tests.items():
        m = QUESTION.fullmatch(row.get("question", ""))
        if not m or m.group(1) not in OPS or m.group(2) not in OPS:
            sys.exit(f"{test_path}:{line_no}: not a question of the form op(op(\"word\"))")
        outer, inner, word = m.groups()
        if OPS[outer](OPS[inner](word)) != row["answer"]:
            sys.exit(f"{test_path}:{line_no}: the answer is not {outer}({inner}({word!r}))")
        questions[sample] = (inner, outer, word, row["answer"])
    draws = smollm2_replies.draws_of(work, "string", sys.argv[2:])
    counts = collections.defaultdict(collections.Counter)
    for model, sample, reply, predicted in smollm2_replies.replies(work, "string", draws):
        inner, outer, word, answer = questions[sample]
        c = counts[model]
        c["n"] += 1
        c["correct"] += predicted == answer
        steps = steps_of(reply)
        c["plan"] += [s[0] for s in steps[:2]] == [inner, outer]
        if steps and steps[0][0] == inner:
            first_input = word if inner == "initials" else steps[0][1]
            c["copies"] += first_input == word
        previous = word
        for op, given, out in steps[:2]:
            # initials names no input: it works on the question's words (step 1) or on the
            # previous step's output
            source = given if given is not None else previous
            c["steps " + op] += 1
            c["right " + op] += OPS[op](source) == out
            previous = out
    print(f"`string` test replies, draws {', '.join(draws)}: % of examples (accuracy, plan, "
          "copy) and % of each operation's steps whose output is that operation applied to the "
          "step's own input (steps seen)\n")
    ops = list(OPS)
    print("| model | examples | accuracy | both steps, right order | copies the word | "
          + " | ".join(ops) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(ops))
    for model, c in counts.items():
        n = c["n"]
        cells = [f"{100.0 * c['right ' + op] / c['steps ' + op]:.0f} ({c['steps ' + op]})"
                 if c["steps " + op] else "– (0)" for op in ops]
        print(f"| {model} | {n} | {100.0 * c['correct'] / n:.1f} | {100.0 * c['plan'] / n:.1f} | "
              f"{100.0 * c['copies'] / n:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Test and training files for the ProMoT and DMT benches (bench/promot_smollm2.sh,
bench/dmt_smollm2.sh), from a task suite (kmoe task-suite / kmoe demo --profile smollm2).

  general_sets.py tests SUITE OUT N
      OUT/TASK-0shot.jsonl: the first N test examples of each suite task as they are;
      OUT/TASK-1shot.jsonl: the same with one demonstration before each question (the first
      example of the task's K-shot draw 0, its rationale and "The answer is X.");
      OUT/chat-1shot.jsonl, OUT/chat-0shot.jsonl: the first N rows of the chat family's
      chat.copy dataset as a test (answer: the sentence, exact match); rows N.. are never
      used as a test (general_sets.py train takes its general data from them).
  general_sets.py train SUITE OUT SEED ROWS
      OUT/special.jsonl: ROWS rows drawn from the arith family (the math task's related
      family); OUT/general.jsonl: ROWS rows drawn from the chat family, chat.copy's rows
      below 100 (the chat test) excluded; OUT/yesno.jsonl: ROWS rows of the yesno family.
      Drawn with random.Random(SEED).
  general_sets.py heldout SUITE OUT N
      OUT/arith-1shot.jsonl: the first N arith-family rows that OUT/special.jsonl does not hold,
      1-shot (the demonstration: special.jsonl's first row): DMT's in-distribution test.

Nothing of a task's test set is ever a demonstration or a training row: demonstrations come
from the K-shot draw 0, training rows from the open datasets.
"""
import json
import os
import random
import re
import sys

LETTERS = "ABCDEFGHIJ"
CHAT_TEST_ROWS = 100  # chat.copy rows 0..99 are the chat test; never trained on


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write(path, rows):
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def question_text(ex):
    """The user message kmoe renders for a K-shot example (prompt_format.cpp)."""
    q = ex.get("question", ex.get("instruction", ""))
    for i, c in enumerate(ex.get("choices", [])):
        q += "\n%s. %s" % (LETTERS[i], c)
    if ex.get("input"):
        q += "\n\n" + ex["input"]
    return q


def demo_text(ex):
    if ex.get("rationale"):  # the suite's tasks: the rationale, then the answer as they write it
        reply = ex["rationale"] + " The answer is " + ex["answer"] + "."
    else:  # chat: the reply itself
        reply = ex["answer"]
    return "Here is an example.\n\n" + question_text(ex) + "\nAnswer: " + reply + "\n\nNow answer this one.\n\n"


def one_shot(ex, demo):
    out = dict(ex)
    key = "question" if "question" in ex else "instruction"
    out[key] = demo_text(demo) + ex[key]
    return out


def tests(suite, out, n):
    os.makedirs(out, exist_ok=True)
    meta = json.load(open(os.path.join(suite, "suite.json")))
    for t in meta["tasks"]:
        test = read(os.path.join(suite, "tasks", t["name"], "test.jsonl"))[:n]
        demo = read(os.path.join(suite, t["kshot_draws"][0]["file"]))[0]
        write(os.path.join(out, t["name"] + "-0shot.jsonl"), test)
        write(os.path.join(out, t["name"] + "-1shot.jsonl"), [one_shot(e, demo) for e in test])
    copy = read(os.path.join(suite, "open", "chat.copy.jsonl"))
    assert len(copy) > CHAT_TEST_ROWS + 1 and n <= CHAT_TEST_ROWS, "chat.copy has too few rows"
    chat = [{"id": "chat-%03d" % i, "question": r["instruction"], "answer": r["output"]}
            for i, r in enumerate(copy[:n])]
    demo = {"question": copy[-1]["instruction"], "answer": copy[-1]["output"]}
    write(os.path.join(out, "chat-0shot.jsonl"), chat)
    write(os.path.join(out, "chat-1shot.jsonl"), [one_shot(e, demo) for e in chat])


def family_rows(suite, family, skip=None):
    meta = json.load(open(os.path.join(suite, "suite.json")))
    rows = []
    for d in meta["datasets"]:
        if d["family"] != family:
            continue
        data = read(os.path.join(suite, d["file"]))
        if skip and d["name"] in skip:
            data = data[skip[d["name"]]:]
        rows += data
    return rows


def train(suite, out, seed, n):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(seed)
    write(os.path.join(out, "special.jsonl"), rng.sample(family_rows(suite, "arith"), n))
    write(os.path.join(out, "general.jsonl"),
          rng.sample(family_rows(suite, "chat", skip={"chat.copy": CHAT_TEST_ROWS}), n))
    write(os.path.join(out, "yesno.jsonl"), rng.sample(family_rows(suite, "yesno"), n))


def heldout(suite, out, n):
    """OUT/arith-1shot.jsonl: the first N arith-family rows not in OUT/special.jsonl (the DMT
    specialised data), as a 1-shot test (the demonstration: special.jsonl's first row)."""
    special = read(os.path.join(out, "special.jsonl"))
    seen = {(r["instruction"], r["output"]) for r in special}
    rows = [r for r in family_rows(suite, "arith") if (r["instruction"], r["output"]) not in seen][:n]
    assert len(rows) == n, "the arith family has too few rows outside special.jsonl"

    def example(i, r):
        answer = re.search(r"answer is (-?\d+)", r["output"]).group(1)
        return {"id": "arith-%03d" % i, "question": r["instruction"], "answer": answer}

    d = special[0]
    demo = {"question": d["instruction"], "answer": d["output"]}  # the reply as the data writes it
    write(os.path.join(out, "arith-1shot.jsonl"), [one_shot(example(i, r), demo) for i, r in enumerate(rows)])


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "tests":
        tests(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "heldout":
        heldout(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 6 and sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)

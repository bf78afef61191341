# Writes WORK/a.jsonl + WORK/b.jsonl (120 rows, four task families: arithmetic, colours,
# geography as chat records, code), WORK/family.txt (the family of each row) and
# WORK/kshot.jsonl (4 arithmetic K-shot examples). Used by the embed/select-data scripts.
import json, random, sys
w = sys.argv[1]
random.seed(0)
colours = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
things = ["car", "house", "flower", "shirt", "door", "bird", "cup", "ball"]
countries = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
             ("Egypt", "Cairo"), ("Canada", "Ottawa"), ("Kenya", "Nairobi"), ("Peru", "Lima")]
funcs = ["sum", "reverse", "sort", "max", "min", "len", "count", "filter"]
def arith():
    a, b = random.randint(2, 99), random.randint(2, 99)
    return {"instruction": f"What is {a} plus {b}?", "input": "", "output": f"{a} + {b} = {a + b}"}
def colour():
    c, t = random.choice(colours), random.choice(things)
    return {"instruction": f"What colour is the {t}?", "input": "", "output": f"The {t} is painted {c}."}
def geo():
    c, k = random.choice(countries)
    return {"messages": [{"role": "user", "content": f"What is the capital city of {c}?"},
                         {"role": "assistant", "content": f"The capital of {c} is {k}."}]}
def code():
    f = random.choice(funcs)
    return {"instruction": f"Write a Python function that returns the {f} of a list.", "input": "",
            "output": f"def my_{f}(xs):\n    return {f}(xs)"}
fams = [arith, colour, geo, code]
with open(f"{w}/a.jsonl", "w") as a, open(f"{w}/b.jsonl", "w") as b, open(f"{w}/family.txt", "w") as fam:
    for i in range(120):
        f = i % 4
        out = a if i < 60 else b
        out.write(json.dumps(fams[f]()) + "\n")
        fam.write(f"{f}\n")
with open(f"{w}/kshot.jsonl", "w") as k:
    for i in range(4):
        a_, b_ = random.randint(2, 99), random.randint(2, 99)
        k.write(json.dumps({"id": f"k{i}", "question": f"Compute {a_} plus {b_}.", "answer": str(a_ + b_)}) + "\n")

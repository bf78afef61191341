# Writes the toy training sets of the train_* script tests into a folder: a learnable
# fixed mapping (word -> its code) as open Alpaca records, chat `messages` records and
# K-shot records, so that the loss must fall and both prompt styles are exercised.
import json, os, sys

out = sys.argv[1]
words = ["apple", "river", "stone", "cloud", "tiger", "lemon", "piano", "candle",
         "forest", "silver", "rocket", "garden", "window", "planet", "bridge", "orange"]
code = lambda w: w[::-1].upper()[:3]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "alpaca.jsonl"), "w") as f:
    for w in words:
        f.write(json.dumps({"instruction": "Code of the word", "input": w, "output": code(w)}) + "\n")
with open(os.path.join(out, "kshot.jsonl"), "w") as f:
    for i, w in enumerate(words[:8]):
        f.write(json.dumps({"id": f"k{i}", "question": f"Code of {w}?", "answer": code(w)}) + "\n")
with open(os.path.join(out, "chat.jsonl"), "w") as f:
    for w in words[8:]:
        f.write(json.dumps({"messages": [{"role": "user", "content": f"Code of {w}?"},
                                         {"role": "assistant", "content": code(w)}]}) + "\n")
for k, part in enumerate([words[:5], words[5:10], words[10:]]):
    with open(os.path.join(out, f"task{k}.jsonl"), "w") as f:
        for w in part:
            f.write(json.dumps({"instruction": f"Task {k}: code of the word", "input": w, "output": code(w)}) + "\n")

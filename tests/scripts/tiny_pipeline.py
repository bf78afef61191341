# Writes a tiny pipeline setup under WORK for the `kmoe run` scripts: WORK/model (a random
# 2-layer LLaMA HF folder with a byte-level BPE), WORK/bank (four PEFT LoRA adapters: two
# trained a few steps on arithmetic answers, two random), an open corpus of Alpaca records in
# three families (WORK/a.jsonl, WORK/b.jsonl: 60 rows each), 4 arithmetic K-shot examples
# (WORK/kshot.jsonl) and 6 test ones (WORK/test.jsonl). Deterministic. Run with the reference
# Python (torch, transformers, peft).
import json, os, random, sys
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM
from tiny_llama import write_byte_level_llama

work = sys.argv[1]
random.seed(0)
def arith():
    a, b = random.randint(2, 99), random.randint(2, 99)
    return {"instruction": f"What is {a} plus {b}?", "input": "", "output": f"{a} + {b} = {a + b}"}
def colour():
    c, t = random.choice(["red", "green", "blue", "black"]), random.choice(["car", "house", "cup", "bird"])
    return {"instruction": f"What colour is the {t}?", "input": "", "output": f"The {t} is painted {c}."}
def code():
    f = random.choice(["sum", "sorted", "max", "min", "len"])
    return {"instruction": f"Write a Python function that returns the {f} of a list.", "input": "",
            "output": f"def my_{f}(xs):\n    return {f}(xs)"}
for name, first in (("a", 0), ("b", 60)):
    with open(os.path.join(work, name + ".jsonl"), "w") as f:
        for i in range(first, first + 60):
            f.write(json.dumps((arith, colour, code)[i % 3]()) + "\n")
with open(os.path.join(work, "kshot.jsonl"), "w") as f:
    for i in range(4):
        a, b = random.randint(2, 99), random.randint(2, 99)
        f.write(json.dumps({"id": f"k{i}", "question": f"Compute {a} plus {b}.", "answer": str(a + b)}) + "\n")
torch.manual_seed(7)
torch.set_num_threads(2)
model_dir = os.path.join(work, "model")
tok = write_byte_level_llama(model_dir, hidden=64, intermediate=96)

random.seed(1)
with open(os.path.join(work, "test.jsonl"), "w") as f:
    for i in range(6):
        a, b = random.randint(2, 9), random.randint(2, 9)
        f.write(json.dumps({"id": "t%d" % i, "question": "Compute %d plus %d." % (a, b), "answer": str(a + b)}) + "\n")

HEAD = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
kshot = [json.loads(l) for l in open(os.path.join(work, "kshot.jsonl"))]
def adapter(name, seed, steps):
    torch.manual_seed(seed)
    base = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                            target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for step in range(steps):
        ex = kshot[step % len(kshot)]
        p_ids = tok.encode(HEAD + "\n\n### Instruction:\n" + ex["question"] + "\n\n### Response:\n").ids
        c_ids = tok.encode(ex["answer"]).ids + [2]
        loss = model(input_ids=torch.tensor([p_ids + c_ids]), labels=torch.tensor([[-100] * len(p_ids) + c_ids])).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(os.path.join(work, "bank", name))
adapter("arith0", 10, 12)
adapter("arith1", 11, 12)
adapter("rand0", 20, 0)
adapter("rand1", 21, 0)

# Answer and reasoning perplexities for scoring_parity_test.cpp, from transformers + PEFT: a
# small random LLaMA with a byte-level BPE tokenizer.json (so kmoe can load the folder as a
# user's model), three PEFT adapters with random B, a K-shot JSONL, the Alpaca prompt string
# of each example (written here independently of kmoe) and per adapter the perplexities.
# Writes $KMOE_PARITY_DIR/scoring/{model/, adapters/NAME/, kshot.jsonl, refs.json}; the
# scoring script tests reuse the model, adapters and kshot file.
import json
import math
import os
import shutil

import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM

OUT = os.path.join(os.environ["KMOE_PARITY_DIR"], "scoring")

ADAPTERS = {
    "a_qv": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    "b_all": dict(r=2, lora_alpha=4, target_modules="all-linear"),
    "c_mlp": dict(r=4, lora_alpha=16, target_modules=["gate_proj", "up_proj", "down_proj"]),
}

EXAMPLES = [
    {"id": "mc1", "question": "Which is a fruit?", "choices": ["apple", "stone", "chair"], "answer": "A"},
    {"id": "mc2", "question": "Pick the colour.", "choices": ["run", "blue"], "answer": "blue",
     "rationale": "Blue is a colour; run is a verb."},
    {"id": "num1", "question": "What is 2 + 3?", "answer": "5", "rationale": "2 plus 3 makes 5."},
    {"id": "num2", "instruction": "Add the numbers.", "input": "10 and 32", "answer": "42"},
    {"id": "ex1", "question": "Say hi.", "answer": "hi"},
    {"id": "mc3", "question": "Odd one out?", "choices": ["cat", "dog", "car", "cow"], "answer": "C"},
    {"id": "num3", "question": "Half of 7?", "answer": "3.5", "rationale": "7 / 2 = 3.5"},
]

HEAD = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
HEAD_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
              "Write a response that appropriately completes the request.")


def alpaca(ex):
    q = ex.get("question") or ex["instruction"]
    for i, c in enumerate(ex.get("choices", [])):
        q += "\n%s. %s" % (chr(65 + i), c)
    if ex.get("input"):
        return HEAD_INPUT + "\n\n### Instruction:\n" + q + "\n\n### Input:\n" + ex["input"] + "\n\n### Response:\n"
    return HEAD + "\n\n### Instruction:\n" + q + "\n\n### Response:\n"


def letter(ex):
    if "choices" not in ex:
        return ex["answer"]
    for i, c in enumerate(ex["choices"]):
        if ex["answer"] in (chr(65 + i), c):
            return chr(65 + i)
    raise ValueError(ex)


def write_tokenizer(model_dir):
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab, [], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    return tok, len(vocab)


def main():
    torch.manual_seed(4321)
    shutil.rmtree(OUT, ignore_errors=True)
    model_dir = os.path.join(OUT, "model")
    os.makedirs(model_dir)
    tok, vocab_size = write_tokenizer(model_dir)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         rms_norm_eps=1e-5, rope_theta=10000.0, initializer_range=0.1, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(model_dir, safe_serialization=True)
    with open(os.path.join(OUT, "kshot.jsonl"), "w") as f:
        for ex in EXAMPLES:
            f.write(json.dumps(ex) + "\n")

    def perplexities(model):
        rows = []
        for ex in EXAMPLES:
            prompt = tok.encode(alpaca(ex)).ids
            answer = " " + letter(ex)
            reasoning = " " + ex["rationale"] + " The answer is " + letter(ex) + "." if "rationale" in ex else answer
            row = {}
            for key, target in (("ppl", answer), ("ppl_reasoning", reasoning)):
                cont = tok.encode(target).ids
                ids = torch.tensor([prompt + cont])
                with torch.no_grad():
                    logp = model(input_ids=ids).logits[0].double().log_softmax(-1)
                nll = -sum(logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(cont))
                row[key] = math.exp(nll / len(cont))
                if key == "ppl":
                    row["nll"] = nll
            rows.append(row)
        return rows

    base = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    refs = {"prompts": [alpaca(ex) for ex in EXAMPLES],
            "prompt_ids": [tok.encode(alpaca(ex)).ids for ex in EXAMPLES],
            "scores": {"base": perplexities(base)}}
    for name, options in ADAPTERS.items():
        model = get_peft_model(LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32),
                               LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, **options))
        gen = torch.Generator().manual_seed(len(name) * 7)
        with torch.no_grad():
            for param_name, p in model.named_parameters():
                if "lora_B" in param_name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        model.eval()
        model.save_pretrained(os.path.join(OUT, "adapters", name))
        refs["scores"][name] = perplexities(model)
    with open(os.path.join(OUT, "refs.json"), "w") as f:
        json.dump(refs, f)


if __name__ == "__main__":
    main()

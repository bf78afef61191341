#!/usr/bin/env bash
# LoRA SFT throughput: `kmoe train --mode lora` next to a PEFT loop doing the same steps
# (the same random LLaMA, hidden 512, 8 layers; r 16 on q_proj/v_proj, dropout 0; the same
# token sequences; global batch 8 in micro-batches of 4; AdamW; one thread), as real
# (non-pad) training tokens/s and a ratio; then kmoe np = 2 vs np = 1 (one thread per rank:
# the data-parallel overhead). The texts' lengths vary as instruction data does (word
# counts log-normal, median 30, clipped to 3..150: about 20 to 900 tokens): the PEFT loop
# pads each micro-batch to its longest sequence, as a plain HF loop does; kmoe packs them
# without padding. Tokens/s is over the optimizer steps after the first (warm-up
# excluded), from each side's own step timings (kmoe: /metrics/tokens_per_s of train.h5).
# The roofline line counts a LoRA step as 2 forwards (the frozen base computes no weight
# gradients) against the fp32 GEMM peak measured here (bench/roofline.py).
# usage: bench/train_bench.sh BUILD_DIR [STEPS]   (needs BUILD_DIR/kmoe, BUILD_DIR/refenv)
set -euo pipefail
BUILD=${1:-build}
STEPS=${2:-6}
KMOE=$BUILD/kmoe
source "$(dirname "$0")/blas_env.sh" "$KMOE"
PY=$BUILD/refenv/bin/python
W=$(mktemp -d /tmp/kmoe-train-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=1 KMOE_PARITY_DIR="$W"
"$PY" - "$W" <<'PY'
import json, os, sys, importlib.util, random
import torch
from transformers import LlamaConfig, LlamaForCausalLM
W = sys.argv[1]
spec = importlib.util.spec_from_file_location("ref", "tests/parity/scoring_reference.py")
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
os.makedirs(W + "/model")
tok, vocab = ref.write_tokenizer(W + "/model")
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=vocab, hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                  num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0)
LlamaForCausalLM(cfg).save_pretrained(W + "/model", safe_serialization=True)
rng = random.Random(0)
words = "the of model train data rank step token batch loss expert adapter router layer".split()
with open(W + "/data.jsonl", "w") as f:
    for i in range(64):
        n = min(150, max(3, int(rng.lognormvariate(3.4, 0.9))))
        f.write(json.dumps({"text": " ".join(rng.choice(words) for _ in range(n))}) + "\n")
PY
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run_kmoe() {  # np [output suffix] [mpirun options] -> mean tokens/s over steps 2..
  mpirun --oversubscribe ${3:-} -np "$1" "$KMOE" train --model "$W/model" --data "$W/data.jsonl" --global-batch 8 \
    --micro-batch 4 --max-steps "$STEPS" --lora-dropout 0 --lr 1e-4 --threads 1 --checkpoint-every 0 \
    --output "$W/k$1${2:-}" 2> "$W/log_$1${2:-}" || { cat "$W/log_$1${2:-}" >&2; echo "kmoe train failed (np=$1)" >&2; exit 1; }
  /usr/bin/python3 -c "import h5py,sys; t=h5py.File(sys.argv[1])['metrics/tokens_per_s'][1:]; print(len(t) / (1 / t).sum())" \
    "$W/k$1${2:-}/train.h5"
}
PEFT=$("$PY" - "$W" "$STEPS" <<'PY'
import json, sys, time, random
import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM
torch.set_num_threads(1)
W, steps = sys.argv[1], int(sys.argv[2])
tok = Tokenizer.from_file(W + "/model/tokenizer.json")
seqs = [tok.encode(json.loads(l)["text"]).ids + [2] for l in open(W + "/data.jsonl")]
model = get_peft_model(LlamaForCausalLM.from_pretrained(W + "/model"),
                       LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=16, lora_dropout=0.0,
                                  target_modules=["q_proj", "v_proj"]))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
order = list(range(len(seqs))); random.Random(0).shuffle(order)
rates = []
for step in range(steps):
    t0 = time.perf_counter()
    batch = [seqs[order[(step * 8 + k) % len(seqs)]] for k in range(8)]
    targets = sum(len(s) - 1 for s in batch)
    for m in range(2):
        mb = batch[4 * m:4 * m + 4]
        L = max(len(s) for s in mb)
        ids = torch.tensor([s + [0] * (L - len(s)) for s in mb])
        mask = torch.tensor([[1] * len(s) + [0] * (L - len(s)) for s in mb])
        labels = torch.tensor([s + [-100] * (L - len(s)) for s in mb])
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1),
                                                 ignore_index=-100, reduction="sum") / targets
        loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    opt.step(); opt.zero_grad(set_to_none=True)
    rates.append(sum(len(s) for s in batch) / (time.perf_counter() - t0))
r = rates[1:]
print(len(r) / sum(1 / x for x in r))
PY
)
# FLOPs per real token of a LoRA step (2 forwards), at the data's mean attention context
FLOP_PER_TOKEN=$("$PY" - "$W" <<'PY'
import json, sys
from tokenizers import Tokenizer
sys.path.insert(0, "bench")
from roofline import forward_flops
W = sys.argv[1]
tok = Tokenizer.from_file(W + "/model/tokenizer.json")
lens = [len(tok.encode(json.loads(l)["text"]).ids) + 1 for l in open(W + "/data.jsonl")]
flops = sum(2 * forward_flops(512, 1376, 8, 8, 4, tok.get_vocab_size(), n, n / 2) for n in lens)
print("%.0f %d %d %d" % (flops / sum(lens), min(lens), sorted(lens)[len(lens) // 2], max(lens)))
PY
)
read -r FPT LMIN LMED LMAX <<< "$FLOP_PER_TOKEN"
read -r PEAK32 PEAK16 <<< "$("$PY" bench/roofline.py peak 1)"
K1=$(run_kmoe 1)
K2=$(run_kmoe 2)
# The machine's own ceiling for two processes: two independent np = 1 runs at once (unbound,
# one per core); np = 2 cannot beat their summed tokens/s.
run_kmoe 1 x --bind-to\ none > "$W/pair_x" &
run_kmoe 1 y --bind-to\ none > "$W/pair_y"
wait
PAIR=$(echo "$(cat "$W/pair_x") + $(cat "$W/pair_y")" | bc -l)
printf "PEFT loop: %.0f tokens/s\nkmoe np=1: %.0f tokens/s\nkmoe np=2: %.0f tokens/s\n" "$PEFT" "$K1" "$K2"
printf "kmoe/PEFT (np=1): %.2f\nnp=2/np=1: %.2f\n" "$(echo "$K1 / $PEFT" | bc -l)" "$(echo "$K2 / $K1" | bc -l)"
printf "two independent np=1 runs at once: %.0f tokens/s together (%.2f x one alone): np=2 reaches %.0f%% of that\n" \
  "$PAIR" "$(echo "$PAIR / $K1" | bc -l)" "$(echo "100 * $K2 / $PAIR" | bc -l)"
printf "sequence tokens: min %s, median %s, max %s\n" "$LMIN" "$LMED" "$LMAX"
printf "roofline (1 thread, fp32 GEMM peak %.1f GFLOP/s, bf16 %.1f): PEFT %.1f GFLOP/s (%.0f%%), kmoe %.1f GFLOP/s (%.0f%%)\n" \
  "$PEAK32" "$PEAK16" "$(echo "$PEFT * $FPT / 1000000000" | bc -l)" "$(echo "100 * $PEFT * $FPT / 1000000000 / $PEAK32" | bc -l)" \
  "$(echo "$K1 * $FPT / 1000000000" | bc -l)" "$(echo "100 * $K1 * $FPT / 1000000000 / $PEAK32" | bc -l)"

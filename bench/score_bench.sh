#!/usr/bin/env bash
# Scoring throughput: `kmoe score` (no generation: answer, reasoning and option
# log-likelihoods) next to a PEFT loop doing the same forwards (one base model, set_adapter per
# adapter, the same batch size, one thread), as tokens/s and a ratio; then kmoe np = 2 vs
# np = 1 with one thread per rank. The model is a random LLaMA (hidden 512, 8 layers) with the
# byte-level tokenizer of scoring_reference.py, built here so the bench needs nothing else.
# usage: bench/score_bench.sh BUILD_DIR   (needs BUILD_DIR/kmoe, BUILD_DIR/refenv)
set -euo pipefail
BUILD=${1:-build}
KMOE=$BUILD/kmoe
PY=$BUILD/refenv/bin/python
W=$(mktemp -d /tmp/kmoe-score-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=1 KMOE_PARITY_DIR="$W"
"$PY" - "$W" <<'PY'
import json, os, sys, importlib.util
import torch
from peft import LoraConfig, get_peft_model
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
for i in range(4):
    m = get_peft_model(LlamaForCausalLM.from_pretrained(W + "/model"),
                       LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    m.save_pretrained(W + "/bank/a%d" % i)
with open(W + "/kshot.jsonl", "w") as f:
    for k in range(4):
        for j, ex in enumerate(ref.EXAMPLES):
            e = dict(ex); e["id"] = "%s_%d" % (ex["id"], k); f.write(json.dumps(e) + "\n")
PY
# Open MPI refuses root without these (harmless otherwise).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run_kmoe() {  # np threads -> seconds
  local t0 t1
  t0=$(date +%s.%N)
  if ! mpirun --oversubscribe -np "$1" "$KMOE" score --model "$W/model" --bank "$W/bank" --kshot "$W/kshot.jsonl" \
    --max-new-tokens 0 --batch-size 8 --chunk-size 7 --threads "$2" --output "$W/s_$1.h5" 2> "$W/log_$1"; then
    cat "$W/log_$1" >&2
    echo "kmoe score failed (np=$1)" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
# tokens in every forward the scorer runs (prompt + target per request), from python
TOKENS=$("$PY" - "$W" <<'PY'
import json, sys, importlib.util, os
from tokenizers import Tokenizer
spec = importlib.util.spec_from_file_location("ref", "tests/parity/scoring_reference.py")
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
tok = Tokenizer.from_file(sys.argv[1] + "/model/tokenizer.json")
n = 0
for line in open(sys.argv[1] + "/kshot.jsonl"):
    ex = json.loads(line); p = len(tok.encode(ref.alpaca(ex)).ids)
    targets = [" " + ref.letter(ex)] + ([" " + ex["rationale"] + " The answer is " + ref.letter(ex) + "."] if "rationale" in ex else [])
    targets += [" " + c for c in ex.get("choices", [])]
    n += sum(p + len(tok.encode(t).ids) for t in targets)
print(n * 5)  # base + 4 adapters
PY
)
PEFT_S=$("$PY" - "$W" <<'PY'
import json, sys, time, importlib.util
import torch
from peft import PeftModel
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM
torch.set_num_threads(1)
spec = importlib.util.spec_from_file_location("ref", "tests/parity/scoring_reference.py")
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
W = sys.argv[1]
tok = Tokenizer.from_file(W + "/model/tokenizer.json")
reqs = []
for line in open(W + "/kshot.jsonl"):
    ex = json.loads(line); p = tok.encode(ref.alpaca(ex)).ids
    targets = [" " + ref.letter(ex)] + ([" " + ex["rationale"] + " The answer is " + ref.letter(ex) + "."] if "rationale" in ex else [])
    targets += [" " + c for c in ex.get("choices", [])]
    reqs += [(p, tok.encode(t).ids) for t in targets]
reqs.sort(key=lambda r: len(r[0]) + len(r[1]))
t0 = time.time()
model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(W + "/model"), W + "/bank/a0", adapter_name="a0")
for i in range(1, 4):
    model.load_adapter(W + "/bank/a%d" % i, adapter_name="a%d" % i)
model.eval()
def score_all():
    for b in range(0, len(reqs), 8):
        batch = reqs[b:b + 8]; L = max(len(p) + len(c) for p, c in batch)
        ids = torch.zeros(len(batch), L, dtype=torch.long); mask = torch.zeros_like(ids)
        for j, (p, c) in enumerate(batch):
            ids[j, :len(p) + len(c)] = torch.tensor(p + c); mask[j, :len(p) + len(c)] = 1
        with torch.no_grad():
            logp = model(input_ids=ids, attention_mask=mask).logits.log_softmax(-1)
with torch.no_grad():
    with model.disable_adapter():
        score_all()
for i in range(4):
    model.set_adapter("a%d" % i); score_all()
print(time.time() - t0)
PY
)
K1=$(run_kmoe 1 1)
K2=$(run_kmoe 2 1)
cmp <("$PY" -c "import h5py,sys;print(h5py.File('$W/s_1.h5')['nll'][()].tobytes().hex())") \
    <("$PY" -c "import h5py,sys;print(h5py.File('$W/s_2.h5')['nll'][()].tobytes().hex())") || echo "WARNING: np=1 and np=2 NLL differ"
printf 'tokens scored (base + 4 adapters): %s\n' "$TOKENS"
printf 'PEFT loop, 1 thread:   %.2f s  %.0f tokens/s (incl. model + adapter load)\n' "$PEFT_S" "$(echo "$TOKENS / $PEFT_S" | bc -l)"
printf 'kmoe np=1, 1 thread:   %.2f s  %.0f tokens/s (whole command: start, load, hash, write)\n' "$K1" "$(echo "$TOKENS / $K1" | bc -l)"
printf 'kmoe np=2, 1 thread/rank: %.2f s  %.0f tokens/s\n' "$K2" "$(echo "$TOKENS / $K2" | bc -l)"
printf 'ratio kmoe np=1 / PEFT: %.2f x;  np=2 / np=1 speed-up: %.2f x\n' "$(echo "$PEFT_S / $K1" | bc -l)" "$(echo "$K1 / $K2" | bc -l)"

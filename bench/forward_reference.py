"""transformers' side of bench/forward_smollm2.sh: forward-pass tokens/s of SmolLM2-135M
(dequantised from the same GGUF kmoe loads) on a fixed random batch, fp32, no grad.
Prints one JSON line: {"tokens_per_s": ..., "threads": ..., ...}.
Usage: forward_reference.py GGUF_FILE BATCH SEQ ITERS THREADS
"""
import json
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM


def main() -> int:
    path, batch, seq, iters, threads = sys.argv[1], *map(int, sys.argv[2:6])
    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                                 torch_dtype=torch.float32)
    model.lm_head.weight = model.model.embed_tokens.weight  # the GGUF ties the head
    model.eval()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), generator=gen)
    with torch.no_grad():
        model(ids)  # warm-up
        start = time.perf_counter()
        for _ in range(iters):
            model(ids)
        elapsed = time.perf_counter() - start
    print(json.dumps({"impl": "transformers", "tokens_per_s": batch * seq * iters / elapsed,
                      "seconds_per_forward": elapsed / iters, "threads": threads,
                      "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

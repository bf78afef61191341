"""sentence-transformers side of bench/embed_bench.sh: sentences/s for MODEL on stdin's lines.
usage: embed_reference.py MODEL BATCH THREADS [DTYPE]   (float32, or bfloat16: the model cast)"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

model, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dtype = sys.argv[4] if len(sys.argv) > 4 else "float32"
torch.set_num_threads(threads)
texts = [line.rstrip("\n") for line in sys.stdin]
st = SentenceTransformer(model, device="cpu")
if dtype == "bfloat16":
    st = st.to(torch.bfloat16)
st.encode(texts[:batch], batch_size=batch)  # warm-up
start = time.perf_counter()
st.encode(texts, batch_size=batch)
elapsed = time.perf_counter() - start
print(json.dumps({"sentences": len(texts), "seconds": elapsed, "sentences_per_s": len(texts) / elapsed,
                  "threads": threads, "dtype": dtype}))

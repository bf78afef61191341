#!/usr/bin/env bash
# select-data over N x 384 random unit vectors (default 1,000,000, float16 on disk) with a
# few K-shot rows: wall time and peak RSS (/usr/bin/time -v) of `kmoe select-data`, and the
# peak RSS above that of the same command on 20,000 rows (the process baseline), which
# --memory-mb bounds.
# The embeddings file is made with h5py, in the layout `kmoe embed` writes, with a matching
# one-line-per-row corpus so select-data's input checks pass.
# Usage: bench/select_data_bench.sh [ROWS] [DTYPE float16|float32] [C] [MEMORY_MB]
set -euo pipefail
ROWS=${1:-1000000}
DTYPE=${2:-float16}
C=${3:-10000}
MEM=${4:-512}
KMOE=${KMOE:-$(dirname "$0")/../build/kmoe}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kmoe-bench-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
make_input() {  # make_input DIR ROWS
  mkdir -p "$1"
  ${PYTHON:-/usr/bin/python3} - "$1" "$2" "$DTYPE" <<'PY'
import hashlib, json, sys
import h5py, numpy as np
w, rows, dtype = sys.argv[1], int(sys.argv[2]), sys.argv[3]
dim, block = 384, 65536
rng = np.random.default_rng(0)
with open(f"{w}/corpus.jsonl", "w") as f:
    for i in range(rows):
        f.write('{"instruction": "row %d", "output": "x"}\n' % i)
with open(f"{w}/kshot.jsonl", "w") as f:
    for i in range(8):
        f.write(json.dumps({"id": f"k{i}", "question": f"q{i}", "answer": "a"}) + "\n")
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
with h5py.File(f"{w}/embeddings.h5", "w") as h:
    e = h.create_dataset("embeddings", (rows, dim), dtype=dtype, chunks=(1024, dim))
    for b in range(0, rows, block):
        x = rng.standard_normal((min(block, rows - b), dim)).astype(np.float32)
        e[b:b + len(x)] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)
    k = rng.standard_normal((8, dim)).astype(np.float32)
    h["kshot_embeddings"] = (k / np.linalg.norm(k, axis=1, keepdims=True)).astype(dtype)
    h["source_file"] = np.zeros(rows, dtype=np.int64)
    h["line"] = np.arange(1, rows + 1, dtype=np.int64)
    h["source_files"] = np.array([f"{w}/corpus.jsonl".encode()])
    h["source_files_sha256"] = np.array([sha(f"{w}/corpus.jsonl").encode()])
    h.attrs["encoder_kind"] = "bench"
    h.attrs["encoder_model_sha256"] = ""
    h.attrs["encoder_model"] = "random"
    h.attrs["kshot_sha256"] = sha(f"{w}/kshot.jsonl")
PY
}
select_data() {  # select_data DIR: one select-data process under /usr/bin/time -v
  /usr/bin/time -v "$KMOE" select-data --embeddings "$1/embeddings.h5" --corpus "$1/corpus.jsonl" \
    --kshot "$1/kshot.jsonl" --c "$C" --tau 0.9 --memory-mb "$MEM" --output-dir "$1/sel" 2> "$1/time" ||
    { cat "$1/time" >&2; exit 1; }
  sed -n 's/.*Maximum resident set size (kbytes): //p' "$1/time"
}
# The baseline: the same process on 20,000 rows (libtorch, MPI and HDF5 loaded; a few MB of data).
make_input "$WORK/base" 20000
base_kb=$(select_data "$WORK/base")
make_input "$WORK/big" "$ROWS"
ls -l "$WORK/big/embeddings.h5"
big_kb=$(select_data "$WORK/big")
grep -E "kept|Elapsed" "$WORK/big/time"
echo "selected.jsonl lines: $(wc -l < "$WORK/big/sel/selected.jsonl")"
echo "peak RSS: $((big_kb / 1024)) MiB; baseline (20,000 rows) $((base_kb / 1024)) MiB; above the baseline" \
  "$(((big_kb - base_kb) / 1024)) MiB against --memory-mb $MEM"

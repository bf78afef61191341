# Fuzzes the text-format readers (tokenizer.json: BPE, WordPiece, unigram; a SentencePiece
# tokenizer.model; K-shot JSONL) for a bounded number of inputs (KMOE_FUZZ_RUNS, default 20000)
# from a fixed seed (KMOE_FUZZ_SEED, default 1), so a run is
# reproducible: tests/fuzz/text_formats_fuzz.cpp built with clang's libFuzzer,
# AddressSanitizer and UBSan (any UB report aborts), seeded with tests/fuzz/text_corpus
# (first byte: 0 tokenizer.json, 1 tokenizer.model, 2 JSONL). A tokenizer that loads also
# encodes and decodes a few strings. Any crash, out-of-bounds read, UB, exception other than
# std::exception or input over 10 s fails the test, and the input that did it is printed.
source "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v clang++ > /dev/null || fail "clang++ is needed (setup.sh installs clang)"
cd "$WORK"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -I"$src")
for f in "$src"/data/tokenizers/*.cpp "$src"/data/text/{kshot,input_file,json_file,jsonl}.cpp \
  "$src/tests/fuzz/text_formats_fuzz.cpp"; do
  clang++ "${flags[@]}" -c "$f" -o "$(basename "$f" .cpp).o" 2>> build.log &
  if [ "$(jobs -r | wc -l)" -ge 2 ]; then wait -n || true; fi
done
wait || true
clang++ -fsanitize=fuzzer,address,undefined ./*.o -o text_fuzz -lpcre2-8 2>> build.log ||
  { cat build.log; fail "building the fuzz target"; }
mkdir -p corpus
cp "$src"/tests/fuzz/text_corpus/* corpus/
if ! ./text_fuzz -runs="${KMOE_FUZZ_RUNS:-20000}" -seed="${KMOE_FUZZ_SEED:-1}" -timeout=10 -rss_limit_mb=2048 \
  -max_len=8192 -print_final_stats=1 corpus > fuzz.log 2>&1; then
  tail -60 fuzz.log
  for f in crash-* leak-* timeout-* oom-*; do
    [ -e "$f" ] && { echo "input $f:"; od -c "$f" | head -20; }
  done
  fail "the fuzzer found a file the readers do not survive"
fi
grep -E "stat::number_of_executed_units|cov:" fuzz.log | tail -2
echo ok

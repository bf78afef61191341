# Fuzzes the weight-file readers (safetensors and GGUF: a user's model and adapter files)
# for a bounded number of inputs (KMOE_FUZZ_RUNS, default 20000) from a
# fixed seed (KMOE_FUZZ_SEED, default 1), so a run is reproducible:
# tests/fuzz/formats_fuzz.cpp built with clang's libFuzzer, AddressSanitizer and UBSan (any
# UB report aborts), linked against libtorch, seeded with the small files of
# tests/fuzz/formats_corpus (first byte: 0 safetensors, 1 GGUF). Any crash, out-of-bounds
# read, UB, exception other than std::exception or input over 10 s fails the test, and the
# input that did it is printed (add it to the corpus and a unit test).
source "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v clang++ > /dev/null || fail "clang++ is needed (setup.sh installs clang)"
# C++17: clang 14 cannot parse libtorch 1.13's headers in C++20 mode (c10::IValue incomplete).
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src" \
  -isystem /usr/include/torch/csrc/api/include \
  "$src"/data/formats/{safetensors,gguf,mapped_file}.cpp "$src/model/shape_text.cpp" "$src/tests/fuzz/formats_fuzz.cpp" \
  -o "$WORK/formats_fuzz" -ltorch -ltorch_cpu -lc10 2> "$WORK/build.log" ||
  { cat "$WORK/build.log"; fail "building the fuzz target"; }
mkdir -p "$WORK/corpus"
cp "$src"/tests/fuzz/formats_corpus/* "$WORK/corpus/"
cd "$WORK"
if ! ./formats_fuzz -runs="${KMOE_FUZZ_RUNS:-20000}" -seed="${KMOE_FUZZ_SEED:-1}" -timeout=10 -rss_limit_mb=2048 \
  -max_len=8192 -print_final_stats=1 corpus > fuzz.log 2>&1; then
  tail -60 fuzz.log
  for f in crash-* leak-* timeout-* oom-*; do
    [ -e "$f" ] && { echo "input $f:"; od -c "$f" | head -20; }
  done
  fail "the fuzzer found a file the readers do not survive"
fi
grep -E "stat::number_of_executed_units|cov:" fuzz.log | tail -2
echo ok

# Fuzzes the chat-template interpreter for a bounded number of inputs (KMOE_FUZZ_RUNS,
# default 15000 in CI; set it higher for a deeper run) from a fixed seed (KMOE_FUZZ_SEED, default 1), so a
# run is reproducible:
# tests/fuzz/jinja_fuzz.cpp built with clang's libFuzzer, AddressSanitizer and UBSan (any
# UB report aborts), seeded with the real templates of tests/fuzz/jinja_corpus. Any crash,
# leak, UB, uncaught exception or input that runs over 10 s fails the test, and the input
# that did it is printed (add it to the corpus and to tests/unit/chat_template_test.cpp).
source "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v clang++ > /dev/null || fail "clang++ is needed (setup.sh installs clang)"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src" \
  "$src"/data/tokenizers/jinja*.cpp "$src/tests/fuzz/jinja_fuzz.cpp" -o "$WORK/jinja_fuzz" 2> "$WORK/build.log" ||
  { cat "$WORK/build.log"; fail "building the fuzz target"; }
mkdir -p "$WORK/corpus"
cp "$src"/tests/fuzz/jinja_corpus/* "$WORK/corpus/"
cd "$WORK"
fuzz_run jinja_fuzz 15000 "the fuzzer found an input the interpreter does not survive"

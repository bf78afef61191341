# Fuzzes the text-format readers (tokenizer.json: BPE, WordPiece, unigram; a SentencePiece
# tokenizer.model; K-shot JSONL; the --config INI reader; SFT JSONL) for a bounded number of inputs (KMOE_FUZZ_RUNS, default 10000)
# from a fixed seed (KMOE_FUZZ_SEED, default 1), so a run is
# reproducible: tests/fuzz/text_formats_fuzz.cpp built with clang's libFuzzer,
# AddressSanitizer and UBSan (any UB report aborts), seeded with tests/fuzz/text_corpus
# (first byte modulo 5: 0 tokenizer.json, 1 tokenizer.model, 2 K-shot JSONL, 3 INI, 4 SFT JSONL,
# tokenised by the corpus's byte-level tokenizer.json). A tokenizer that loads also
# encodes and decodes a few strings. Any crash, out-of-bounds read, UB, exception other than
# std::exception or input over 10 s fails the test, and the input that did it is printed.
source "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v clang++ > /dev/null || fail "clang++ is needed (setup.sh installs clang)"
cd "$WORK"
# One translation unit: the shared headers are parsed once (about 40% less compile time than
# file by file, which matters when the tests run two at a time).
printf '#include "%s"\n' "$src"/data/tokenizers/*.cpp "$src"/data/text/{kshot,input_file,json_file,jsonl,sft_data,prompt_format}.cpp \
  "$src/launcher/ini.cpp" \
  "$src/tests/fuzz/text_formats_fuzz.cpp" > text_fuzz_unity.cpp
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src" \
  text_fuzz_unity.cpp -o text_fuzz -lpcre2-8 2> build.log ||
  { cat build.log; fail "building the fuzz target"; }
mkdir -p corpus
cp "$src"/tests/fuzz/text_corpus/* corpus/
tail -c +2 "$src/tests/fuzz/text_corpus/bpe_bytelevel" > sft_tokenizer.json
export KMOE_FUZZ_TOKENIZER=$PWD/sft_tokenizer.json
fuzz_run text_fuzz 10000 "the fuzzer found a file the readers do not survive"

# Fuzzes the model and adapter file readers (safetensors, GGUF, PEFT adapter_config.json and
# adapter folders, HF config.json)
# for a bounded number of inputs (KMOE_FUZZ_RUNS, default 10000) from a
# fixed seed (KMOE_FUZZ_SEED, default 1), so a run is reproducible:
# tests/fuzz/formats_fuzz.cpp built with clang's libFuzzer, AddressSanitizer and UBSan (any
# UB report aborts), linked against libtorch, seeded with the small files of
# tests/fuzz/formats_corpus (first byte modulo 5: 0 safetensors, 1 GGUF, 2 adapter_config.json,
# 3 adapter folder, 4 config.json; see the target). Any crash, out-of-bounds
# read, UB, exception other than std::exception or input over 10 s fails the test, and the
# input that did it is printed (add it to the corpus and a unit test).
source "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v clang++ > /dev/null || fail "clang++ is needed (setup.sh installs clang)"
# C++17: clang 14 cannot parse libtorch 1.13's headers in C++20 mode (c10::IValue incomplete).
# One translation unit: libtorch's headers are parsed once, not once per source (half the time).
printf '#include "%s"\n' "$src"/data/formats/{safetensors,gguf,mapped_file,peft_adapter,peft_files,hf_checkpoint}.cpp \
  "$src"/model/{shape_text,lora,linear_hook}.cpp "$src"/data/store/folder_commit.cpp "$src"/data/text/json_file.cpp \
  "$src/tests/fuzz/formats_fuzz.cpp" > "$WORK/formats_fuzz_unity.cpp"
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src" \
  -isystem /usr/include/torch/csrc/api/include "$WORK/formats_fuzz_unity.cpp" \
  -o "$WORK/formats_fuzz" -ltorch -ltorch_cpu -lc10 2> "$WORK/build.log" ||
  { cat "$WORK/build.log"; fail "building the fuzz target"; }
mkdir -p "$WORK/corpus"
cp "$src"/tests/fuzz/formats_corpus/* "$WORK/corpus/"
cd "$WORK"
fuzz_run formats_fuzz 10000 "the fuzzer found a file the readers do not survive"

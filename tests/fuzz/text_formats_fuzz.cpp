// libFuzzer target for the text-format readers a user hands kmoe: a tokenizer.json (BPE,
// WordPiece, unigram), a SentencePiece tokenizer.model (protobuf) and a K-shot JSONL file.
// Any bytes must end in a loaded object or a std::exception naming the file, never a crash,
// an out-of-bounds read, undefined behaviour or a hang; a tokenizer that loads must then
// encode and decode text without one either. The first byte picks the reader. Run by
// tests/scripts/fuzz_text_formats.sh with AddressSanitizer and UBSan.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "data/text/kshot.h"
#include "data/tokenizers/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int kind = data[0] % 3;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (kind == 2) {
      (void)kmoe::kshot_parse(body, "fuzz.jsonl");
      return 0;
    }
    // in the working folder: the test script runs the target in its own temporary folder
    const std::string path = "kmoe_text_fuzz_" + std::to_string(getpid()) + (kind == 0 ? ".json" : ".model");
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(body.data(), 1, body.size(), f);
    std::fclose(f);
    const auto tok = kmoe::tokenizer_load(path);
    for (const char* text : {"Hello world, 12345!", " two  spaces\tand\nlines ", "Grüße 🙂 日本語", "<|im_start|>user"}) {
      for (const bool special : {false, true}) {
        const auto ids = tok->encode(text, special);
        try {
          (void)tok->decode(ids, /*skip_special=*/special);
        } catch (const std::exception&) {
        }
      }
    }
  } catch (const std::exception&) {
    // the documented outcome for a bad file: an error naming it
  }
  return 0;
}

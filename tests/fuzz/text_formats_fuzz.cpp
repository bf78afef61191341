// libFuzzer target for the text-format readers a user hands kmoe: a tokenizer.json (BPE,
// WordPiece, unigram), a SentencePiece tokenizer.model (protobuf), a K-shot JSONL file, a
// --config INI file and an SFT JSONL file (--data of `kmoe train`).
// Any bytes must end in a loaded object or a std::exception naming the file, never a crash,
// an out-of-bounds read, undefined behaviour or a hang; a tokenizer that loads must then
// encode and decode text without one either. The first byte picks the reader (its value
// modulo 5: 0 tokenizer.json, 1 tokenizer.model, 2 K-shot JSONL, 3 INI, 4 SFT JSONL; for SFT,
// bit 3 picks the chat prompt style over alpaca). SFT examples are tokenised by the
// tokenizer.json named by KMOE_FUZZ_TOKENIZER. Run by tests/scripts/fuzz_text_formats.sh
// with AddressSanitizer and UBSan.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <exception>
#include <string>

#include "data/text/kshot.h"
#include "data/text/sft_data.h"
#include "data/tokenizers/tokenizer.h"
#include "launcher/ini.h"

namespace {

// The tokenizer of the SFT reader, loaded once.
const kmoe::Tokenizer& sft_tokenizer() {
  static const std::unique_ptr<kmoe::Tokenizer> tok = [] {
    const char* path = std::getenv("KMOE_FUZZ_TOKENIZER");
    if (!path) {
      std::fprintf(stderr, "KMOE_FUZZ_TOKENIZER must name a tokenizer.json\n");
      std::abort();
    }
    return kmoe::tokenizer_load(path);
  }();
  return *tok;
}

void write_file(const std::string& path, const std::string& body) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  std::fwrite(body.data(), 1, body.size(), f);
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int kind = data[0] % 5;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  // in the working folder: the test script runs the target in its own temporary folder
  const std::string stem = "kmoe_text_fuzz_" + std::to_string(getpid());
  try {
    if (kind == 2) {
      (void)kmoe::kshot_parse(body, "fuzz.jsonl");
      return 0;
    }
    if (kind == 3) {
      write_file(stem + ".ini", body);
      (void)kmoe::ini_parse(stem + ".ini");
      return 0;
    }
    if (kind == 4) {
      const kmoe::Tokenizer& tok = sft_tokenizer();
      write_file(stem + ".jsonl", body);
      kmoe::SftDataOptions options;
      if (data[0] & 8) {
        options.prompt.style = kmoe::PromptStyle::chat;
        options.prompt.chat = kmoe::chat_format_parse("chatml");
      } else {
        options.chat_for_messages = kmoe::chat_format_parse("chatml");  // `messages` records in alpaca style
      }
      options.max_len = 48;  // short, so that truncation and dropped prompts are reached
      options.eos_id = 0;
      kmoe::SftDataStats stats;
      const auto examples = kmoe::sft_load({stem + ".jsonl"}, tok, options, &stats);
      for (const auto& e : examples) {
        // sft_load's contract: a prompt, then at least one response token, within max_len
        if (e.n_prompt < 0 || e.response_tokens() < 1 || static_cast<int64_t>(e.tokens.size()) > options.max_len)
          std::abort();
      }
      (void)kmoe::sft_sample_sources(examples, {0.5}, 1);
      return 0;
    }
    const std::string path = stem + (kind == 0 ? ".json" : ".model");
    write_file(path, body);
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
  } catch (const std::exception& e) {
    // the documented outcome for a bad file: an error naming it (KMOE_FUZZ_VERBOSE=1 prints it)
    if (std::getenv("KMOE_FUZZ_VERBOSE")) std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 0;
}

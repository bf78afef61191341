// libFuzzer target for the weight-file readers (data/formats/safetensors.*, gguf.*): a model
// or adapter file is untrusted input (a truncated download, a file from anywhere), so any
// bytes must end in tensors or a std::exception naming the file, never a crash, an
// out-of-bounds read, undefined behaviour or a hang. The first input byte picks the reader;
// the rest is written to a file and opened as a user's file would be, then every tensor is
// read and, for GGUF, the model config and tokenizer are taken from the metadata. Run by
// tests/scripts/fuzz_formats.sh with AddressSanitizer and UBSan.
#include <ATen/ATen.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "data/formats/gguf.h"
#include "data/formats/safetensors.h"

namespace {

const std::string& scratch(const char* ext) {
  static const std::string base = "kmoe_formats_fuzz_" + std::to_string(getpid());  // in the working folder
  static std::string path;
  path = base + ext;
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool gguf = data[0] & 1;
  const std::string& path = scratch(gguf ? ".gguf" : ".safetensors");
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data + 1, 1, size - 1, f);
  std::fclose(f);
  try {
    if (gguf) {
      const kmoe::GgufFile file(path);
      for (const auto& t : file.tensors()) {
        try {
          (void)file.tensor(t.name);
        } catch (const std::exception&) {
        }
      }
      try {
        (void)kmoe::gguf_model_config(file);
      } catch (const std::exception&) {
      }
      try {
        (void)kmoe::gguf_tokenizer_data(file);
      } catch (const std::exception&) {
      }
    } else {
      const kmoe::SafetensorsFile file(path);
      for (const auto& [name, entry] : file.entries()) (void)file.tensor(name);
    }
  } catch (const std::exception&) {
    // the documented outcome for a bad file: an error naming it
  }
  return 0;
}

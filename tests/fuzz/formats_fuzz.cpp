// libFuzzer target for the weight-file readers (data/formats/safetensors.*, gguf.*): a model
// or adapter file is untrusted input (a truncated download, a file from anywhere), so any
// bytes must end in tensors or a std::exception naming the file, never a crash, an
// out-of-bounds read, undefined behaviour or a hang. The first input byte picks the reader;
// the rest is written to a file and opened as a user's file would be, then every tensor is
// read and, for GGUF, the model config and tokenizer are taken from the metadata. The other
// files of a model or adapter folder are fuzzed too: a PEFT adapter_config.json (a config
// that parses must write back to JSON that parses to the same config), a whole PEFT adapter
// folder (config + safetensors, checked against a small base) and an HF config.json. The
// first byte modulo 5 picks: 0 safetensors, 1 GGUF, 2 adapter_config.json, 3 adapter folder
// (then 2 bytes little-endian: the config's length; the config; the safetensors bytes),
// 4 config.json. Run by tests/scripts/fuzz_formats.sh with AddressSanitizer and UBSan.
#include <ATen/ATen.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

#include "data/formats/gguf.h"
#include "data/formats/hf_checkpoint.h"
#include "data/formats/peft_adapter.h"
#include "data/formats/safetensors.h"

namespace {

const std::string& scratch(const char* ext) {
  static const std::string base = "kmoe_formats_fuzz_" + std::to_string(getpid());  // in the working folder
  static std::string path;
  path = base + ext;
  return path;
}

void write_file(const std::string& path, const char* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  std::fwrite(data, 1, size, f);
  std::fclose(f);
}

// A folder named after the process, emptied, in the working folder.
std::string scratch_dir(const char* what) {
  const std::string dir = "kmoe_formats_fuzz_" + std::to_string(getpid()) + what;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directory(dir);
  return dir;
}

bool same(const kmoe::LoraConfig& a, const kmoe::LoraConfig& b) {
  return a.r == b.r && a.lora_alpha == b.lora_alpha && a.target_modules == b.target_modules &&
         a.layers_to_transform == b.layers_to_transform && a.use_rslora == b.use_rslora &&
         a.lora_dropout == b.lora_dropout && a.base_model_name_or_path == b.base_model_name_or_path &&
         a.task_type == b.task_type;
}

// The base an adapter folder is checked against: 2 layers, hidden 16, GQA (2 heads, 1 KV head).
kmoe::ModelConfig small_base() {
  kmoe::ModelConfig c;
  c.vocab_size = 32;
  c.hidden_size = 16;
  c.intermediate_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 8;
  return c;
}

void fuzz_config_files(int kind, const uint8_t* data, size_t size) {
  const char* body = reinterpret_cast<const char*>(data);
  if (kind == 2) {
    const kmoe::LoraConfig c = kmoe::peft_config_parse(std::string(body, size), "adapter_config.json");
    // What kmoe writes of a config it accepted must read back as the same config.
    kmoe::LoraConfig back;
    try {
      back = kmoe::peft_config_parse(kmoe::peft_config_json(c), "written adapter_config.json");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "an accepted adapter_config.json does not read back: %s\n", e.what());
      std::abort();
    }
    if (!same(c, back)) {
      std::fprintf(stderr, "an accepted adapter_config.json reads back as another config\n");
      std::abort();
    }
  } else if (kind == 3) {
    if (size < 2) return;
    const size_t n = std::min<size_t>(data[0] | (size_t(data[1]) << 8), size - 2);
    const std::string dir = scratch_dir("_adapter");
    write_file(dir + "/adapter_config.json", body + 2, n);
    write_file(dir + "/adapter_model.safetensors", body + 2 + n, size - 2 - n);
    (void)kmoe::peft_adapter_load(dir, small_base());
  } else {
    const std::string dir = scratch_dir("_model");
    write_file(dir + "/config.json", body, size);
    (void)kmoe::hf_config_load(dir);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int kind = data[0] % 5;
  if (kind >= 2) {
    try {
      fuzz_config_files(kind, data + 1, size - 1);
    } catch (const std::exception& e) {
      // the documented outcome for a bad file: an error naming it (KMOE_FUZZ_VERBOSE=1 prints it)
      if (std::getenv("KMOE_FUZZ_VERBOSE")) std::fprintf(stderr, "error: %s\n", e.what());
    }
    return 0;
  }
  const bool gguf = kind == 1;
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
  } catch (const std::exception& e) {
    // the documented outcome for a bad file: an error naming it (KMOE_FUZZ_VERBOSE=1 prints it)
    if (std::getenv("KMOE_FUZZ_VERBOSE")) std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 0;
}

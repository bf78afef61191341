// GGUF v3 files (llama.cpp's single-file model format): a header, typed key/value metadata,
// tensor infos (name, ggml dims, type, offset), then aligned tensor data. The reader
// memory-maps the file and validates everything before a tensor is touched, so a bad file
// fails at open with the file and key/tensor named. Tensors come out dequantised to float32
// in torch order: ggml's ne[] is fastest-first, so ne = [in, out] becomes torch [out, in].
// gguf_hf_weights() renames to HF names and undoes the Q/K row permutation that llama.cpp's
// converter applies for its rope, exactly as transformers' GGUF loader does.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/formats/mapped_file.h"
#include "model/config.h"

namespace at {
class Tensor;
}

namespace kmoe {

// Metadata value types, numbered as in the file.
enum class GgufType : uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};
const char* gguf_type_name(GgufType type);

// One metadata value. A scalar is an array of one element in the vector that fits its type:
// integers and bool in `ints` (uint64 is stored bit-cast: read it with as_uint64), floats in
// `floats`, strings in `strings`, nested arrays in `arrays`.
struct GgufValue {
  GgufType type = GgufType::uint8;
  GgufType array_type = GgufType::uint8;  // element type when type == array
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  std::vector<GgufValue> arrays;
};

// ggml tensor types, numbered as in ggml.h. Only the ones kmoe dequantises are named here;
// ggml_type_name() knows them all.
enum GgmlType : uint32_t {
  GGML_TYPE_F32 = 0,
  GGML_TYPE_F16 = 1,
  GGML_TYPE_Q4_0 = 2,
  GGML_TYPE_Q4_1 = 3,
  GGML_TYPE_Q8_0 = 8,
  GGML_TYPE_Q6_K = 14,
  GGML_TYPE_BF16 = 30,
};
const char* ggml_type_name(uint32_t type);  // "Q4_1", ...; "unknown" if not a ggml type
// Elements per block and bytes per block; false for an unknown type id.
bool ggml_type_size(uint32_t type, int64_t* block_elems, int64_t* block_bytes);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;             // ggml order: ne[0] is the fastest-varying dimension
  uint32_t type = 0;                   // ggml type id
  uint64_t offset = 0;                 // from the start of the data section
  uint64_t n_bytes = 0;                // ne × type size
  std::vector<int64_t> shape() const;  // torch order: ne reversed
  int64_t numel() const;
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);  // maps and validates; throws naming the file
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_start_; }  // file offset of the data section

  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  bool has_key(const std::string& key) const { return metadata_.count(key) > 0; }
  const GgufValue& value(const std::string& key) const;  // throws naming file and key if missing
  // Typed scalar getters. They throw naming the file and key if the key is missing or holds
  // another type (any integer type is accepted by get_int, float32/64 by get_float).
  int64_t get_int(const std::string& key) const;
  uint64_t get_uint64(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  // Typed arrays (the element type must match as above).
  std::vector<int64_t> get_ints(const std::string& key) const;
  std::vector<double> get_floats(const std::string& key) const;
  std::vector<std::string> get_strings(const std::string& key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  bool has_tensor(const std::string& name) const { return tensor_index_.count(name) > 0; }
  const GgufTensorInfo& tensor_info(const std::string& name) const;  // throws naming file and tensor
  const uint8_t* tensor_bytes(const std::string& name) const;        // raw (still quantised) data
  // Dequantised float32 tensor in torch order (a copy). Supported: F32, F16, BF16, Q8_0,
  // Q4_0, Q4_1; any other type throws naming the tensor and the type.
  at::Tensor tensor(const std::string& name) const;

 private:
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  MappedFile file_;
  const uint8_t* map_ = nullptr;  // file_.data
  size_t map_size_ = 0;           // file_.size
  uint64_t data_start_ = 0;
};

// Dequantises n elements (a multiple of the block size) of ggml `type` at src into dst.
// `what` names the tensor in errors.
void ggml_dequantize(uint32_t type, const uint8_t* src, float* dst, int64_t n, const std::string& what);

// Hyper-parameters from `<arch>.*` and `tokenizer.ggml.*` metadata, as transformers derives
// them. Supported architectures: llama (and mistral, which llama.cpp files as llama), qwen2.
ModelConfig gguf_model_config(const GgufFile& file);

// Every weight under its HF name, float32, torch order, with attn_q/attn_k un-permuted for
// llama. Without output.weight there is no lm_head entry (config.tie_word_embeddings).
std::map<std::string, at::Tensor> gguf_hf_weights(const GgufFile& file, const ModelConfig& config);
// The HF name for a GGUF tensor name ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight");
// throws naming the file and tensor for a name it does not know.
std::string gguf_hf_name(const std::string& gguf_name, const std::string& file_for_errors);

// What the tokenizers need from the tokenizer.* metadata. Missing optional keys stay empty / -1
// / nullopt so the caller can apply the tokenizer's own defaults.
struct GgufTokenizerData {
  std::string model;  // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
  std::string pre;    // tokenizer.ggml.pre: pre-tokenizer name, e.g. "smollm", "llama-bpe"
  std::vector<std::string> tokens;
  std::vector<float> scores;        // per token (SentencePiece); empty for BPE
  std::vector<int32_t> token_type;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;  // "a b" per merge (BPE)
  int64_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  std::optional<bool> add_bos_token, add_eos_token, add_space_prefix;
  std::string chat_template;  // tokenizer.chat_template (Jinja), empty if absent
};
GgufTokenizerData gguf_tokenizer_data(const GgufFile& file);

}  // namespace kmoe

// What the embedding stage needs from an encoder: texts in, one vector per text out. Two
// kinds implement it: a BERT-family sentence encoder (all-MiniLM, BGE) and the base
// decoder's mean-pooled hidden states. `describe()` goes into embeddings.h5 so that
// select-data can refuse embeddings made by another encoder.
#pragma once

#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace kmoe {

struct EncoderDescription {
  std::string kind;   // "bert" or "decoder"
  std::string model;  // path as given
  std::string model_sha256;
  std::string pooling;  // "mean", "cls"
  bool normalize = true;
  std::string prefix;  // instruction prefix prepended to every text ("" for none)
  int64_t dim = 0;
  int64_t max_tokens = 0;  // longer texts are truncated to this many tokens
};

struct SentenceEncoder {
  virtual ~SentenceEncoder() = default;
  // texts -> [texts.size(), dim] float32 on the CPU. Deterministic: the same text gives the
  // same vector whatever batch it is in (padding must not leak into the result).
  virtual at::Tensor encode(const std::vector<std::string>& texts) const = 0;
  virtual const EncoderDescription& describe() const = 0;
};

}  // namespace kmoe

// One way to name and load a sentence encoder, for every stage that encodes text (`kmoe
// embed`, PANDA's insight pool and its retrieval): the kind ("bert": a sentence-transformers
// folder such as all-MiniLM; "decoder": a base model's mean-pooled hidden states) and its
// settings, as recorded in the artifacts (EncoderDescription), so a later stage can load the
// same encoder again and check that it is the same one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "data/encoders/sentence_encoder.h"

namespace kmoe {

struct EncoderSpec {
  std::string kind = "bert";      // bert or decoder
  std::string model;              // bert: sentence-transformers folder; decoder: HF folder or .gguf
  std::string pooling;            // bert: mean or cls ("": the folder's); decoder: mean only
  std::optional<bool> normalize;  // unset: bert as the folder says, decoder normalises
  std::string prefix;             // prepended to every text
  int64_t max_tokens = 0;         // 0: the encoder's default
  int64_t batch_size = 32;        // texts per forward (bert)
  int threads = 0;                // 0: libtorch's default
  std::string dtype = "float32";  // compute precision, float32 or bfloat16 (not part of the
                                  // description: the same encoder in another precision)
};

// Throws std::invalid_argument for a malformed spec (unknown kind, pooling) and what the
// loaders throw (naming the folder or file) for a model that cannot load.
std::unique_ptr<SentenceEncoder> encoder_load(const EncoderSpec& spec);

// The spec that loads an encoder again from its description (the attributes of an artifact).
EncoderSpec encoder_spec_of(const EncoderDescription& description);

// "" when `made` (what an artifact recorded) and `now` describe the same encoder (same kind,
// model content, pooling, normalisation, prefix, dimension and token limit); otherwise the
// first difference in words, e.g. "model sha256 3f2a.. differs from 9c1e..".
std::string encoder_difference(const EncoderDescription& made, const EncoderDescription& now);

}  // namespace kmoe

// The base decoder as a sentence encoder: the mean over real tokens of the final-normed
// hidden states, optionally L2-normalised. Texts are right-padded per batch and pooled with
// the mask, so a text's vector does not depend on the batch it is in (up to float rounding
// of the batched matmuls).
#pragma once

#include <memory>
#include <string>

#include "data/encoders/sentence_encoder.h"

namespace kmoe {

struct DecoderEncoderOptions {
  bool normalize = true;
  std::string prefix;        // prepended to every text
  int64_t max_tokens = 512;  // longer texts are truncated
  int threads = 0;           // 0: libtorch's default
  std::string dtype = "float32";  // or bfloat16: the model's weights and activations
};

// `model`: HF folder or .gguf (model_files_load). Throws naming the path when unusable.
std::unique_ptr<SentenceEncoder> decoder_encoder_load(const std::string& model, const DecoderEncoderOptions& options);

}  // namespace kmoe

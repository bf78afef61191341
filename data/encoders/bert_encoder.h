// A SentenceEncoder over a sentence-transformers or plain HF BERT folder (all-MiniLM-L6-v2,
// BGE): pooling, normalisation and the token limit come from the folder's own
// sentence-transformers files unless an option overrides them. Texts are batched by length
// (sorted) to waste little padding; a text's vector does not depend on its batch mates.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "data/encoders/sentence_encoder.h"

namespace kmoe {

struct BertEncoderOptions {
  std::string pooling;            // "mean" | "cls"; "" = 1_Pooling/config.json (mean when absent)
  std::optional<bool> normalize;  // unset = modules.json lists a Normalize module
  std::string prefix;             // prepended to every text (BGE's query instruction)
  int64_t max_tokens = 0;         // with [CLS]/[SEP]; 0 = sentence_bert_config.json max_seq_length, else 512
  int64_t batch_size = 32;
  int threads = 0;  // torch intra-op threads; 0 = leave libtorch's setting
  std::string dtype = "float32";  // or bfloat16: the projections and attention (model/bert.h)
};

// folder: config.json + model.safetensors (or pytorch-free HF layout with "bert." names) +
// tokenizer.json or vocab.txt. Throws naming the folder or file for anything missing.
std::unique_ptr<SentenceEncoder> bert_encoder_load(const std::string& folder, const BertEncoderOptions& options);

}  // namespace kmoe

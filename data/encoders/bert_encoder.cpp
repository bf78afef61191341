// BERT sentence encoder; see the header. Truncation keeps the first max_tokens - 2 word
// pieces and then adds [CLS]/[SEP], as sentence-transformers' tokenizer call does.
#include "data/encoders/bert_encoder.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>

#include "model/cpu_threads.h"
#include "data/store/content_hash.h"
#include "data/text/json_file.h"
#include "data/formats/safetensors.h"
#include "data/tokenizers/wordpiece_tokenizer.h"
#include "model/bert.h"

namespace kmoe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

BertConfig bert_config_read(const fs::path& path) {
  const json j = json_file_read(path);
  BertConfig c;
  try {
    c.vocab_size = j.at("vocab_size");
    c.hidden_size = j.at("hidden_size");
    c.num_hidden_layers = j.at("num_hidden_layers");
    c.num_attention_heads = j.at("num_attention_heads");
    c.intermediate_size = j.at("intermediate_size");
    c.max_position_embeddings = j.value("max_position_embeddings", c.max_position_embeddings);
    c.type_vocab_size = j.value("type_vocab_size", c.type_vocab_size);
    c.layer_norm_eps = j.value("layer_norm_eps", c.layer_norm_eps);
    c.hidden_act = j.value("hidden_act", c.hidden_act);
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
  if (j.value("position_embedding_type", "absolute") != "absolute") {
    throw std::runtime_error(path.string() + ": position_embedding_type " + j["position_embedding_type"].dump() +
                             " is not supported (absolute only)");
  }
  return c;
}

class BertEncoder : public SentenceEncoder {
 public:
  BertEncoder(const std::string& folder, const BertEncoderOptions& options) : options_(options) {
    const fs::path dir(folder);
    if (!fs::is_directory(dir)) throw std::runtime_error(folder + ": not a folder (a BERT model folder expected)");
    if (!fs::exists(dir / "config.json")) throw std::runtime_error(folder + ": config.json missing");
    if (!fs::exists(dir / "model.safetensors")) throw std::runtime_error(folder + ": model.safetensors missing");
    const BertConfig config = bert_config_read(dir / "config.json");
    tokenizer_ = WordpieceTokenizer::from_folder(folder);
    {
      SafetensorsFile file((dir / "model.safetensors").string());
      std::map<std::string, at::Tensor> weights;
      for (const auto& [name, entry] : file.entries()) weights.emplace(name, file.tensor(name));
      try {
        model_ = bert_from_weights(config, weights, options.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32);
      } catch (const std::exception& e) {
        throw std::runtime_error((dir / "model.safetensors").string() + ": " + e.what());
      }
    }
    std::string pooling = options.pooling;
    if (pooling.empty()) {
      pooling = "mean";
      if (fs::exists(dir / "1_Pooling" / "config.json")) {
        const json p = json_file_read(dir / "1_Pooling" / "config.json");
        if (p.value("pooling_mode_cls_token", false)) pooling = "cls";
        if (p.value("pooling_mode_max_tokens", false) || p.value("pooling_mode_mean_sqrt_len_tokens", false) ||
            p.value("pooling_mode_weightedmean_tokens", false) || p.value("pooling_mode_lasttoken", false)) {
          throw std::runtime_error((dir / "1_Pooling" / "config.json").string() +
                                   ": pooling mode not supported (mean or cls only)");
        }
      }
    }
    if (pooling != "mean" && pooling != "cls") {
      throw std::runtime_error("BERT encoder: pooling " + pooling + " is not one of mean, cls");
    }
    pooling_ = pooling == "cls" ? BertPooling::cls : BertPooling::mean;
    bool normalize = false;
    if (options.normalize) {
      normalize = *options.normalize;
    } else if (fs::exists(dir / "modules.json")) {
      for (const auto& module : json_file_read(dir / "modules.json")) {
        normalize |= module.value("type", "").find("Normalize") != std::string::npos;
      }
    }
    int64_t max_tokens = options.max_tokens;
    if (max_tokens <= 0 && fs::exists(dir / "sentence_bert_config.json")) {
      max_tokens = json_file_read(dir / "sentence_bert_config.json").value("max_seq_length", int64_t{0});
    }
    if (max_tokens <= 0) max_tokens = 512;
    max_tokens = std::min(max_tokens, config.max_position_embeddings);
    if (max_tokens < 2) throw std::runtime_error("BERT encoder: max_tokens must be at least 2 ([CLS] and [SEP])");
    if (options.batch_size <= 0) throw std::runtime_error("BERT encoder: batch_size must be positive");
    if (options.threads > 0) cpu_threads_set(options.threads);
    description_ = {"bert",    folder,         content_hash(folder), pooling,
                    normalize, options.prefix, config.hidden_size,   max_tokens};
  }

  at::Tensor encode(const std::vector<std::string>& texts) const override {
    c10::InferenceMode guard;
    const int64_t n = static_cast<int64_t>(texts.size());
    std::vector<std::vector<int32_t>> ids(n);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int32_t> pieces = tokenizer_->encode(options_.prefix + texts[i], false);
      if (static_cast<int64_t>(pieces.size()) > description_.max_tokens - 2) pieces.resize(description_.max_tokens - 2);
      ids[i].reserve(pieces.size() + 2);
      ids[i].push_back(tokenizer_->cls_id);
      ids[i].insert(ids[i].end(), pieces.begin(), pieces.end());
      ids[i].push_back(tokenizer_->sep_id);
    }
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });
    at::Tensor out = torch::empty({n, description_.dim}, torch::kFloat32);
    for (int64_t start = 0; start < n; start += options_.batch_size) {
      const int64_t count = std::min(options_.batch_size, n - start);
      const int64_t seq = static_cast<int64_t>(ids[order[start]].size());
      at::Tensor input = torch::zeros({count, seq}, torch::kInt64);
      at::Tensor mask = torch::zeros({count, seq}, torch::kInt64);
      auto in_a = input.accessor<int64_t, 2>();
      auto mask_a = mask.accessor<int64_t, 2>();
      for (int64_t b = 0; b < count; ++b) {
        const auto& row = ids[order[start + b]];
        for (size_t t = 0; t < row.size(); ++t) in_a[b][t] = row[t], mask_a[b][t] = 1;
      }
      const at::Tensor hidden = bert_forward(model_, input, mask);  // [count, seq, dim]
      const at::Tensor pooled = bert_pool(hidden, mask, pooling_, description_.normalize);
      const at::Tensor rows = torch::from_blob(order.data() + start, {count}, torch::kInt64);
      out.index_copy_(0, rows, pooled);
    }
    return out;
  }

  const EncoderDescription& describe() const override { return description_; }

 private:
  BertEncoderOptions options_;
  std::unique_ptr<WordpieceTokenizer> tokenizer_;
  BertModel model_;
  BertPooling pooling_ = BertPooling::mean;
  EncoderDescription description_;
};

}  // namespace

std::unique_ptr<SentenceEncoder> bert_encoder_load(const std::string& folder, const BertEncoderOptions& options) {
  return std::make_unique<BertEncoder>(folder, options);
}

}  // namespace kmoe

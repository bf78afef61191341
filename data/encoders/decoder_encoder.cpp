// See decoder_encoder.h. Tokens are encoded with the tokenizer's special tokens (BOS), the
// way the model saw text in training; the chat template is not applied.
#include "data/encoders/decoder_encoder.h"

#include <torch/torch.h>

#include "model/cpu_threads.h"
#include "data/store/content_hash.h"
#include "data/formats/model_files.h"
#include "model/llama.h"

namespace kmoe {

namespace {

class DecoderEncoder : public SentenceEncoder {
 public:
  DecoderEncoder(const std::string& path, const DecoderEncoderOptions& options) {
    ModelFiles files = model_files_load(path);
    tokenizer_ = std::move(files.tokenizer);
    model_ = llama_from_weights(files.config, std::move(files.weights), torch::kCPU,
                                options.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32);
    desc_.kind = "decoder";
    desc_.model = path;
    desc_.model_sha256 = content_hash(path);
    desc_.pooling = "mean";
    desc_.normalize = options.normalize;
    desc_.prefix = options.prefix;
    desc_.dim = files.config.hidden_size;
    desc_.max_tokens = options.max_tokens;
    if (options.max_tokens < 1) throw std::invalid_argument("decoder encoder: max_tokens must be >= 1");
  }

  at::Tensor encode(const std::vector<std::string>& texts) const override {
    torch::NoGradGuard no_grad;
    const int64_t batch = static_cast<int64_t>(texts.size());
    if (batch == 0) return torch::zeros({0, desc_.dim});
    std::vector<std::vector<int32_t>> ids(texts.size());
    int64_t longest = 1;
    for (size_t i = 0; i < texts.size(); ++i) {
      ids[i] = tokenizer_->encode(desc_.prefix + texts[i], /*add_special=*/true);
      if (ids[i].empty()) throw std::runtime_error("decoder encoder: text " + std::to_string(i) + " has no tokens");
      if (static_cast<int64_t>(ids[i].size()) > desc_.max_tokens) ids[i].resize(desc_.max_tokens);
      longest = std::max<int64_t>(longest, static_cast<int64_t>(ids[i].size()));
    }
    at::Tensor input = torch::zeros({batch, longest}, torch::kInt64);  // [batch, seq], right-padded
    at::Tensor mask = torch::zeros({batch, longest}, torch::kInt64);
    auto in_a = input.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (int64_t b = 0; b < batch; ++b) {
      for (size_t t = 0; t < ids[b].size(); ++t) {
        in_a[b][t] = ids[b][t];
        mask_a[b][t] = 1;
      }
    }
    const at::Tensor hidden = llama_hidden_states(model_, input, mask).to(torch::kFloat32);  // [batch, seq, hidden]
    const at::Tensor m = mask.to(torch::kFloat32).unsqueeze(-1);         // [batch, seq, 1]
    at::Tensor pooled = (hidden * m).sum(1) / m.sum(1);                  // [batch, hidden]
    if (desc_.normalize)
      pooled = torch::nn::functional::normalize(pooled, torch::nn::functional::NormalizeFuncOptions().dim(1));
    return pooled.contiguous();
  }

  const EncoderDescription& describe() const override { return desc_; }

 private:
  std::unique_ptr<Tokenizer> tokenizer_;
  LlamaModel model_;
  EncoderDescription desc_;
};

}  // namespace

std::unique_ptr<SentenceEncoder> decoder_encoder_load(const std::string& model, const DecoderEncoderOptions& options) {
  if (options.threads > 0) cpu_threads_set(options.threads);
  return std::make_unique<DecoderEncoder>(model, options);
}

}  // namespace kmoe

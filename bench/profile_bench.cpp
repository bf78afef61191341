// Where the time of one scoring step and one LoRA training step goes, on a real model
// (bench/profile_steps.sh runs it on SmolLM2-135M-Instruct). The decoder marks its
// projections (GEMMs plus the LoRA delta), attention and LM head with RECORD_USER_SCOPE;
// a RecordFunction callback times those scopes and every backward node, and the rest of
// the step's wall time is "other" (embedding, RMSNorm, RoPE, SiLU, residuals, log-softmax,
// cache copies, loss, glue).
//   scoring step: 8 prompts of PROMPT tokens prefilled, then their 6 continuations each
//     (2, 40 and 4 x 8 tokens, as a multiple-choice item with a rationale) in batches of 8.
//   training step: 4 sequences of 60, 150, 250 and 400 tokens packed, loss on the last
//     half of each, LoRA r 16 on q_proj/v_proj, backward, AdamW.
// Usage: kmoe_bench_profile MODEL THREADS [PROMPT=150]   (prints two JSON lines)
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "data/formats/model_files.h"
#include "model/llama.h"
#include "runtime/mpi_world.h"

namespace {

using Clock = std::chrono::steady_clock;
std::map<std::string, double> g_seconds;  // category -> seconds in the current step

struct Started : at::ObserverContext {
  Clock::time_point t0 = Clock::now();
  std::string category;
};

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  const std::string name = fn.name();
  std::string category;
  if (name.rfind("kmoe::", 0) == 0) {
    category = name.substr(6);
  } else if (fn.scope() == at::RecordScope::BACKWARD_FUNCTION) {
    category = "backward";
  } else {
    return nullptr;
  }
  auto ctx = std::make_unique<Started>();
  ctx->category = category;
  return ctx;
}

void on_end(const at::RecordFunction&, at::ObserverContext* ctx) {
  if (!ctx) return;
  auto* s = static_cast<Started*>(ctx);
  g_seconds[s->category] += std::chrono::duration<double>(Clock::now() - s->t0).count();
}

// LoRA on q_proj and v_proj of every layer: delta = scale * x A^T B^T, A and B trained.
struct LoraQV : kmoe::LinearHook {
  std::vector<at::Tensor> a, b;  // per (layer, 0 = q / 1 = v)
  double scale = 1.0;
  LoraQV(const kmoe::ModelConfig& c, int64_t r) {
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      for (const int64_t out : {c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim}) {
        a.push_back((0.01 * torch::randn({r, c.hidden_size})).requires_grad_(true));
        b.push_back((0.01 * torch::randn({out, r})).requires_grad_(true));
      }
    }
  }
  at::Tensor delta(int64_t layer, kmoe::LinearModule m, const at::Tensor& x) const override {
    if (m != kmoe::LinearModule::q_proj && m != kmoe::LinearModule::v_proj) return at::Tensor();
    const size_t i = 2 * layer + (m == kmoe::LinearModule::v_proj ? 1 : 0);
    return at::linear(at::linear(x, a[i]), b[i]) * scale;
  }
};

template <class F>
nlohmann::json profile(const std::string& step, F&& run) {
  run();  // warm-up
  g_seconds.clear();
  const auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(on_start, on_end)
          .needsInputs(false)
          .scopes({at::RecordScope::USER_SCOPE, at::RecordScope::BACKWARD_FUNCTION}));
  const auto t0 = Clock::now();
  run();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  at::removeCallback(handle);
  nlohmann::json j = {{"step", step}, {"seconds", wall}};
  double accounted = 0;
  for (const auto& [k, v] : g_seconds) {
    j["share"][k] = v / wall;
    accounted += v;
  }
  j["share"]["other"] = std::max(0.0, 1.0 - accounted / wall);
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kmoe;
  mpi_world_init(&argc, &argv);
  if (argc < 3) {
    std::cerr << "usage: kmoe_bench_profile MODEL THREADS [PROMPT]\n";
    return 2;
  }
  torch::set_num_threads(std::stoi(argv[2]));
  const int64_t prompt_len = argc > 3 ? std::stoll(argv[3]) : 150;
  ModelFiles files = model_files_load(argv[1]);
  const LlamaModel model = llama_from_weights(files.config, std::move(files.weights), torch::kCPU, torch::kFloat32);
  const int64_t vocab = files.config.vocab_size;
  auto gen = at::detail::createCPUGenerator(0);
  const auto tokens = [&](int64_t n) {
    const at::Tensor t = torch::randint(3, vocab, {n}, gen, torch::kInt64);
    return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
  };

  std::vector<std::vector<int64_t>> prompts;
  std::vector<std::pair<int64_t, std::vector<int64_t>>> conts;
  for (int64_t p = 0; p < 8; ++p) {
    prompts.push_back(tokens(prompt_len));
    for (const int64_t n : {2, 40, 8, 8, 8, 8}) conts.emplace_back(p, tokens(n));
  }
  const auto scoring = profile("scoring", [&] {
    const PromptPrefill prefill = llama_prefill(model, prompts);
    for (size_t i = 0; i < conts.size(); i += 8) {
      const std::vector<std::pair<int64_t, std::vector<int64_t>>> chunk(conts.begin() + i,
                                                                        conts.begin() + std::min(conts.size(), i + 8));
      llama_prefix_logprobs(model, prefill, chunk);
    }
  });

  LoraQV lora(files.config, 16);
  std::vector<at::Tensor> params(lora.a);
  params.insert(params.end(), lora.b.begin(), lora.b.end());
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-4));
  std::vector<int64_t> ids, lengths, at_pos, labels;
  for (const int64_t n : {60, 150, 250, 400}) {
    const auto t = tokens(n);
    for (int64_t k = 0; k < n; ++k) {
      if (k >= n / 2) {
        at_pos.push_back(static_cast<int64_t>(ids.size()) - 1);
        labels.push_back(t[k]);
      }
      ids.push_back(t[k]);
    }
    lengths.push_back(n);
  }
  const at::Tensor ids_t = torch::tensor(ids, torch::kInt64), at_t = torch::tensor(at_pos, torch::kInt64),
                   labels_t = torch::tensor(labels, torch::kInt64);
  const auto training = profile("lora_training", [&] {
    const at::Tensor hidden = llama_hidden_packed(model, ids_t, lengths, &lora);
    const at::Tensor logits = llama_lm_head(model, hidden.index_select(0, at_t));
    torch::nn::functional::cross_entropy(logits, labels_t,
                                         torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
        .backward();
    RECORD_USER_SCOPE("kmoe::optimizer");
    opt.step();
    opt.zero_grad();
  });
  std::cout << scoring.dump() << "\n" << training.dump() << std::endl;
  mpi_world_finalize();
  return 0;
}

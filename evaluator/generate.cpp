// See generate.h. Rank 0 generates and the other ranks return once the options are checked
// (before any model loads): prompts given by hand are few, and sharding them would only
// reorder the output. Prompts are wrapped in the model's chat
// template when it has one (the instruct models users bring), unless --raw.
#include "evaluator/generate.h"

#include <torch/torch.h>

#include <chrono>
#include <iostream>

#include "data/formats/model_files.h"
#include "data/formats/peft_adapter.h"
#include "data/formats/peft_prompt.h"
#include "data/text/kshot.h"
#include "data/tokenizers/tokenizer.h"
#include "model/cpu_threads.h"
#include "model/llama.h"
#include "model/lora.h"
#include "runtime/compute_dtype.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"

namespace kmoe {

StageOutcome generate_stage(const MpiWorld& world, const GenerateStageOptions& options) {
  if (options.model.empty() || options.prompts.empty()) {
    throw UsageError("kmoe generate: --model and --prompt are required");
  }
  if (options.device != "auto" && options.device != "cpu" && options.device != "cuda") {
    throw UsageError("kmoe generate: --device must be auto, cpu or cuda, not '" + options.device + "'");
  }
  if (options.temperature < 0) throw UsageError("kmoe generate: --temperature must be >= 0 (0 = greedy)");
  if (!(options.top_p > 0 && options.top_p <= 1)) throw UsageError("kmoe generate: --top-p must be in (0, 1]");
  if (options.top_k < 0) throw UsageError("kmoe generate: --top-k must be >= 0 (0 = all)");
  if (options.max_new_tokens < 0) throw UsageError("kmoe generate: --max-new-tokens must be >= 0");
  std::string device_name = options.device;
  if (device_name == "auto") device_name = torch::cuda::is_available() ? "cuda" : "cpu";
  ComputeDtype dtype;
  try {
    dtype = compute_dtype_resolve(options.dtype, device_name);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("kmoe generate: ") + e.what());
  }
  // PANDA: each prompt is a question; the pool rows nearest to it go before it (collective).
  std::vector<std::string> prompts = options.prompts;
  if (!options.insights.pool.empty()) {
    std::vector<KshotExample> queries;
    for (const auto& p : prompts) {
      KshotExample q;
      q.instruction = p;
      queries.push_back(std::move(q));
    }
    const InsightPlan plan = insight_plan(world, options.insights, queries, "generate");
    for (size_t i = 0; i < prompts.size(); ++i) prompts[i] = plan.examples[i].instruction;
  }
  if (!world.is_root()) return {};
  if (options.threads != 0) cpu_threads_set(options.threads);
  if (!dtype.warning.empty()) log_warn("generate: ", dtype.warning);
  if (device_name == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error("--device cuda: libtorch sees no CUDA device");
  }
  const torch::Device device = device_name == "cuda" ? torch::Device(torch::kCUDA, world.local_rank) : torch::kCPU;

  const auto t0 = std::chrono::steady_clock::now();
  ModelFiles files = model_files_load(options.model);
  LlamaModel model = llama_from_weights(files.config, std::move(files.weights), device, dtype.type);
  if (!options.soft_prompt.empty()) peft_prompt_apply(options.soft_prompt, model);
  LoraSet lora(files.config);
  const LinearHook* hook = nullptr;
  if (!options.adapter.empty()) {
    LoraAdapter adapter = peft_adapter_load(options.adapter, files.config, "adapter");
    lora_adapter_to(adapter, device, dtype.type);
    lora.add(std::move(adapter));
    lora.activate("adapter");
    hook = &lora;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log_info("loaded ", files.path, " (", files.format, ", ", files.config.num_hidden_layers, " layers, hidden ",
           files.config.hidden_size, ") on ", device_name, " in ", load_s, " s");

  const bool chat = !options.raw && files.chat_template.has_value();
  if (!options.raw && !chat) {
    log_warn("generate: prompts used as they are: ",
             files.chat_template_error.empty() ? "the model has no chat template" : files.chat_template_error);
  }
  std::vector<std::vector<int64_t>> inputs;
  for (const auto& p : prompts) {
    const std::string text = chat ? chat_render(*files.chat_template, {{"user", p}}, true) : p;
    const auto ids = files.tokenizer->encode(text, /*add_special=*/!chat);
    inputs.emplace_back(ids.begin(), ids.end());
  }
  GenerateOptions opt;
  opt.max_new_tokens = options.max_new_tokens;
  opt.temperature = options.temperature;
  opt.top_p = options.top_p;
  opt.top_k = options.top_k;
  opt.seed = options.seed;
  opt.stop_token_ids = files.stop_token_ids;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int64_t need = static_cast<int64_t>(inputs[i].size()) + opt.max_new_tokens;
    if (need > files.config.max_position_embeddings)
      throw UsageError("kmoe generate: prompt " + std::to_string(i + 1) + " has " + std::to_string(inputs[i].size()) +
                       " tokens; with --max-new-tokens " + std::to_string(opt.max_new_tokens) + " it would pass the " +
                       "model's " + std::to_string(files.config.max_position_embeddings) + " positions");
  }
  const auto t1 = std::chrono::steady_clock::now();
  const auto outputs = llama_generate(model, inputs, opt, hook);
  const double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  int64_t new_tokens = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> ids(outputs[i].begin(), outputs[i].end());
    new_tokens += static_cast<int64_t>(ids.size());
    std::cout << (prompts.size() > 1 ? "[" + std::to_string(i + 1) + "] " : "") << options.prompts[i] << "\n"
              << utf8_sanitize(files.tokenizer->decode(ids, /*skip_special=*/true))
              << "\n";  // a byte-level model's stray bytes become U+FFFD, as transformers prints them
    if (i + 1 < prompts.size()) std::cout << "\n";
  }
  log_info("generated ", new_tokens, " tokens in ", gen_s, " s (", new_tokens / std::max(gen_s, 1e-9), " tokens/s)");
  return {};
}

}  // namespace kmoe

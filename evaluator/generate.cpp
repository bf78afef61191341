// See generate.h. Rank 0 generates and the other ranks wait: prompts given by hand are few,
// and sharding them would only reorder the output. Prompts are wrapped in the model's chat
// template when it has one (the instruct models users bring), unless --raw.
#include "evaluator/generate.h"

#include <torch/torch.h>

#include <chrono>
#include <iostream>

#include "model/cpu_threads.h"
#include "data/model_files.h"
#include "data/peft_adapter.h"
#include "launcher/log.h"
#include "launcher/mpi_world.h"
#include "model/llama.h"
#include "model/lora.h"

namespace kmoe {

namespace {

int generate_run(const po::variables_map& vm) {
  const MpiWorld& world = mpi_world();
  if (!world.is_root()) return 0;
  const auto prompts = vm["prompt"].as<std::vector<std::string>>();
  if (vm.count("threads")) cpu_threads_set(vm["threads"].as<int>());
  std::string device_name = vm["device"].as<std::string>();
  if (device_name == "auto") device_name = torch::cuda::is_available() ? "cuda" : "cpu";
  if (device_name != "cpu" && device_name != "cuda") {
    throw UsageError("kmoe generate: --device must be auto, cpu or cuda, not '" + device_name + "'");
  }
  if (device_name == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error("--device cuda: libtorch sees no CUDA device");
  }
  const torch::Device device = device_name == "cuda" ? torch::Device(torch::kCUDA, world.local_rank) : torch::kCPU;
  const auto dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;

  const auto t0 = std::chrono::steady_clock::now();
  ModelFiles files = model_files_load(vm["model"].as<std::string>());
  LlamaModel model = llama_from_weights(files.config, std::move(files.weights), device, dtype);
  LoraSet lora(files.config);
  const LinearHook* hook = nullptr;
  if (vm.count("adapter")) {
    LoraAdapter adapter = peft_adapter_load(vm["adapter"].as<std::string>(), files.config, "adapter");
    lora_adapter_to(adapter, device, dtype);
    lora.add(std::move(adapter));
    lora.activate("adapter");
    hook = &lora;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log_info("loaded ", files.path, " (", files.format, ", ", files.config.num_hidden_layers, " layers, hidden ",
           files.config.hidden_size, ") on ", device_name, " in ", load_s, " s");

  const bool chat = !vm["raw"].as<bool>() && files.chat_template.has_value();
  std::vector<std::vector<int64_t>> inputs;
  for (const auto& p : prompts) {
    const std::string text = chat ? chat_render(*files.chat_template, {{"user", p}}, true) : p;
    const auto ids = files.tokenizer->encode(text, /*add_special=*/!chat);
    inputs.emplace_back(ids.begin(), ids.end());
  }
  GenerateOptions opt;
  opt.max_new_tokens = vm["max-new-tokens"].as<int>();
  opt.temperature = vm["temperature"].as<double>();
  opt.top_p = vm["top-p"].as<double>();
  opt.top_k = vm["top-k"].as<int>();
  opt.seed = vm["seed"].as<uint64_t>();
  opt.stop_token_ids = files.stop_token_ids;
  if (opt.temperature < 0) throw UsageError("kmoe generate: --temperature must be >= 0 (0 = greedy)");
  if (!(opt.top_p > 0 && opt.top_p <= 1)) throw UsageError("kmoe generate: --top-p must be in (0, 1]");
  if (opt.top_k < 0) throw UsageError("kmoe generate: --top-k must be >= 0 (0 = all)");
  if (opt.max_new_tokens < 0) throw UsageError("kmoe generate: --max-new-tokens must be >= 0");
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
    std::cout << (prompts.size() > 1 ? "[" + std::to_string(i + 1) + "] " : "") << prompts[i] << "\n"
              << files.tokenizer->decode(ids, /*skip_special=*/true) << "\n";
    if (i + 1 < prompts.size()) std::cout << "\n";
  }
  log_info("generated ", new_tokens, " tokens in ", gen_s, " s (", new_tokens / std::max(gen_s, 1e-9), " tokens/s)");
  return 0;
}

}  // namespace

Subcommand generate_subcommand() {
  return {"generate", "Generate replies of a model (HF folder or .gguf), optionally with a PEFT adapter",
          [](po::options_description& d, po::positional_options_description& p) {
            d.add_options()("model", po::value<std::string>()->required()->value_name("PATH"),
                            "HF model folder or .gguf file")("adapter", po::value<std::string>()->value_name("DIR"),
                                                             "PEFT LoRA adapter folder")(
                "prompt", po::value<std::vector<std::string>>()->required()->value_name("TEXT"),
                "prompt (repeat for several; also positional)")("raw", po::bool_switch(),
                                                                "do not wrap prompts in the model's chat template")(
                "max-new-tokens", po::value<int>()->default_value(64), "tokens to generate at most")(
                "temperature", po::value<double>()->default_value(0.0), "0 = greedy")(
                "top-p", po::value<double>()->default_value(1.0), "nucleus sampling threshold")(
                "top-k", po::value<int>()->default_value(0), "sample among the k most likely (0 = all)")(
                "seed", po::value<uint64_t>()->default_value(0), "sampling seed")(
                "device", po::value<std::string>()->default_value("auto"), "auto, cpu or cuda")(
                "threads", po::value<int>(), "CPU threads (default: libtorch's)");
            p.add("prompt", -1);
          },
          generate_run};
}

}  // namespace kmoe

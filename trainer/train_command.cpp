// See train_command.h. One function, train_stage(), trains one output (an adapter folder,
// an HF folder or moe.h5) on a given MPI world; `kmoe train` calls it on the job's world,
// `kmoe bank build` on a one-rank world per dataset (ranks split the datasets). The
// options that change the result go into the provenance; --micro-batch, --threads and the
// number of ranks do not (they change rounding only), so a requeued job may resume from a
// checkpoint with another layout as long as the global batch is the same.
#include "trainer/train_command.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/cpu_threads.h"
#include "data/artifact.h"
#include "data/artifact_tensor.h"
#include "data/folder_commit.h"
#include "data/model_files.h"
#include "data/moe_file.h"
#include "data/peft_adapter.h"
#include "data/safetensors.h"
#include "launcher/log.h"
#include "launcher/mpi_world.h"
#include "launcher/output_guard.h"
#include "launcher/stage_runner.h"
#include "model/lora.h"
#include "model/moe_lora.h"
#include "trainer/communicator.h"
#include "trainer/signals.h"
#include "trainer/train_loop.h"

namespace kmoe {

namespace fs = std::filesystem;

namespace {

struct TrainConfig {
  std::string mode = "lora";  // lora | full | moe
  std::string model, output;
  std::vector<std::string> data;
  std::string prompt_style = "alpaca";
  int64_t max_len = 1024;
  LoraConfig lora;
  std::string lora_targets = "q_proj,v_proj";
  std::string init_adapter;
  std::vector<std::string> adapters;  // --mode moe
  int64_t top_k = 2;
  double aux_loss_coef = 0;
  bool routers_only = false;
  TrainOptions train;
  std::string lr_decay = "cosine";
  std::string device = "auto", dtype = "auto";
  bool force = false;
};

std::vector<LinearModule> parse_targets(const std::string& list) {
  std::vector<LinearModule> out;
  std::stringstream s(list);
  std::string item;
  while (std::getline(s, item, ',')) {
    if (item.empty()) continue;
    try {
      out.push_back(linear_module_parse(item));
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--lora-targets: ") + e.what());
    }
  }
  if (out.empty()) throw UsageError("--lora-targets names no module");
  return out;
}

TrainConfig config_from(const po::variables_map& vm, const std::string& who) {
  TrainConfig c;
  if (vm.count("mode")) c.mode = vm["mode"].as<std::string>();
  if (c.mode != "lora" && c.mode != "full" && c.mode != "moe")
    throw UsageError(who + ": --mode must be lora, full or moe");
  c.model = vm["model"].as<std::string>();
  c.data = vm["data"].as<std::vector<std::string>>();
  c.prompt_style = vm["prompt-format"].as<std::string>();
  c.max_len = vm["max-len"].as<int64_t>();
  c.lora.r = vm["lora-r"].as<int64_t>();
  c.lora.lora_alpha = vm["lora-alpha"].as<double>();
  c.lora.lora_dropout = vm["lora-dropout"].as<double>();
  c.lora_targets = vm["lora-targets"].as<std::string>();
  c.lora.target_modules = parse_targets(c.lora_targets);
  c.lora.use_rslora = vm["use-rslora"].as<bool>();
  c.lora.base_model_name_or_path = c.model;
  if (vm.count("init-adapter")) c.init_adapter = vm["init-adapter"].as<std::string>();
  if (vm.count("adapters")) c.adapters = vm["adapters"].as<std::vector<std::string>>();
  if (vm.count("top-k")) c.top_k = vm["top-k"].as<int64_t>();
  if (vm.count("aux-loss-coef")) c.aux_loss_coef = vm["aux-loss-coef"].as<double>();
  if (vm.count("routers-only")) c.routers_only = vm["routers-only"].as<bool>();
  auto& t = c.train;
  t.epochs = vm["epochs"].as<int64_t>();
  if (t.epochs < 0) t.epochs = c.mode == "moe" ? 5 : 3;  // METHOD.md §1.0 and §1.4
  t.max_steps = vm["max-steps"].as<int64_t>();
  t.global_batch = vm["global-batch"].as<int64_t>();
  t.micro_batch = vm["micro-batch"].as<int64_t>();
  t.lr = vm["lr"].as<double>();
  t.warmup_ratio = vm["warmup-ratio"].as<double>();
  t.warmup_steps = vm["warmup-steps"].as<int64_t>();
  c.lr_decay = vm["lr-decay"].as<std::string>();
  try {
    t.lr_decay = lr_decay_parse(c.lr_decay);
    prompt_style_parse(c.prompt_style);
  } catch (const std::invalid_argument& e) {
    throw UsageError(who + ": " + e.what());
  }
  t.adamw.weight_decay = vm["weight-decay"].as<double>();
  if (t.adamw.weight_decay < 0) t.adamw.weight_decay = c.mode == "moe" ? 1e-4 : 0.0;  // METHOD.md §1.4
  t.max_grad_norm = vm["max-grad-norm"].as<double>();
  t.seed = vm["seed"].as<uint64_t>();
  t.checkpoint_every = vm["checkpoint-every"].as<int64_t>();
  t.log_every = vm["log-every"].as<int64_t>();
  c.device = vm["device"].as<std::string>();
  c.dtype = vm["dtype"].as<std::string>();
  c.force = vm["force"].as<bool>();
  if (c.device == "auto") c.device = torch::cuda::is_available() ? "cuda" : "cpu";
  if (c.device != "cpu" && c.device != "cuda") throw UsageError(who + ": --device must be auto, cpu or cuda");
  if (c.device == "cuda" && !torch::cuda::is_available())
    throw UsageError(who + ": --device cuda, but libtorch sees no CUDA device on this machine (use --device cpu or auto)");
  if (c.dtype == "auto") c.dtype = c.device == "cuda" && c.mode != "full" ? "bfloat16" : "float32";
  if (c.dtype != "float32" && c.dtype != "bfloat16") throw UsageError(who + ": --dtype must be float32 or bfloat16");
  if (c.mode == "full" && c.dtype != "float32") throw UsageError(who + ": --mode full trains in float32 only");
  if (t.global_batch <= 0 || t.micro_batch <= 0 || c.max_len < 2 || t.lr <= 0 || c.lora.r <= 0)
    throw UsageError(who + ": --global-batch, --micro-batch, --lr and --lora-r must be positive, --max-len >= 2");
  if (t.max_steps <= 0 && t.epochs <= 0) throw UsageError(who + ": give --epochs or --max-steps");
  if (vm.count("threads")) cpu_threads_set(vm["threads"].as<int>());
  return c;
}

StageSpec train_spec(const TrainConfig& c, const std::string& artifact) {
  StageSpec spec;
  spec.stage = "train";
  spec.output = artifact;
  spec.force = c.force;
  const auto& t = c.train;
  spec.options = {{"mode", c.mode},
                  {"prompt_style", c.prompt_style},
                  {"max_len", c.max_len},
                  {"epochs", t.epochs},
                  {"max_steps", t.max_steps},
                  {"global_batch", t.global_batch},
                  {"lr", t.lr},
                  {"warmup_ratio", t.warmup_ratio},
                  {"warmup_steps", t.warmup_steps},
                  {"lr_decay", c.lr_decay},
                  {"weight_decay", t.adamw.weight_decay},
                  {"max_grad_norm", t.max_grad_norm},
                  {"seed", t.seed},
                  {"device", c.device},
                  {"dtype", c.dtype}};
  if (c.mode == "lora") {
    spec.options["lora_r"] = c.lora.r;
    spec.options["lora_alpha"] = c.lora.lora_alpha;
    spec.options["lora_dropout"] = c.lora.lora_dropout;
    spec.options["lora_targets"] = c.lora_targets;
    spec.options["use_rslora"] = c.lora.use_rslora;
  }
  if (c.mode == "moe") {
    spec.options["top_k"] = c.top_k;
    spec.options["aux_loss_coef"] = c.aux_loss_coef;
    spec.options["routers_only"] = c.routers_only;
    spec.options["lora_dropout"] = c.lora.lora_dropout;
  }
  spec.inputs = {{"model", c.model}};
  for (size_t i = 0; i < c.data.size(); ++i) spec.inputs.emplace_back("data/" + std::to_string(i), c.data[i]);
  if (!c.init_adapter.empty()) spec.inputs.emplace_back("init_adapter", c.init_adapter);
  for (size_t i = 0; i < c.adapters.size(); ++i)
    spec.inputs.emplace_back("adapter/" + std::to_string(i), c.adapters[i]);
  return spec;
}

// The HF names of the model's own tensors (the tied LM head once, as embed_tokens).
std::vector<std::pair<std::string, at::Tensor>> llama_named_weights(const LlamaModel& m) {
  std::vector<std::pair<std::string, at::Tensor>> out{{"model.embed_tokens.weight", m.embed_tokens}};
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const auto& y = m.layers[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.emplace_back(p + "input_layernorm.weight", y.input_layernorm);
    out.emplace_back(p + "self_attn.q_proj.weight", y.q_proj);
    out.emplace_back(p + "self_attn.k_proj.weight", y.k_proj);
    out.emplace_back(p + "self_attn.v_proj.weight", y.v_proj);
    out.emplace_back(p + "self_attn.o_proj.weight", y.o_proj);
    if (y.q_bias.defined()) out.emplace_back(p + "self_attn.q_proj.bias", y.q_bias);
    if (y.k_bias.defined()) out.emplace_back(p + "self_attn.k_proj.bias", y.k_bias);
    if (y.v_bias.defined()) out.emplace_back(p + "self_attn.v_proj.bias", y.v_bias);
    if (y.o_bias.defined()) out.emplace_back(p + "self_attn.o_proj.bias", y.o_bias);
    out.emplace_back(p + "post_attention_layernorm.weight", y.post_attention_layernorm);
    out.emplace_back(p + "mlp.gate_proj.weight", y.gate_proj);
    out.emplace_back(p + "mlp.up_proj.weight", y.up_proj);
    out.emplace_back(p + "mlp.down_proj.weight", y.down_proj);
  }
  out.emplace_back("model.norm.weight", m.norm);
  if (!m.lm_head.is_same(m.embed_tokens)) out.emplace_back("lm_head.weight", m.lm_head);
  return out;
}

// An HF folder of the trained weights: config.json and tokenizer files copied from the
// input folder, model.safetensors written into a fresh `dir` (the stage's DIR.partial).
void hf_folder_save(const std::string& input_dir, const std::vector<std::pair<std::string, at::Tensor>>& weights,
                    const std::string& dir) {
  const fs::path partial = dir;
  fs::remove_all(partial);
  fs::create_directories(partial);
  for (const char* name : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt"}) {
    if (fs::exists(fs::path(input_dir) / name)) fs::copy_file(fs::path(input_dir) / name, partial / name);
  }
  std::map<std::string, at::Tensor> named;
  for (const auto& [name, t] : weights) named[name] = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  safetensors_write((partial / "model.safetensors").string(), named, {{"format", "pt"}});
}

void write_metrics(ArtifactWriter& w, const TrainMetrics& m) {
  const int64_t s = static_cast<int64_t>(m.step.size());
  w.write_int64("metrics/step", {s}, m.step.data());
  w.write_floats("metrics/loss", {s}, m.loss.data());
  w.write_floats("metrics/lr", {s}, m.lr.data());
  w.write_floats("metrics/grad_norm", {s}, m.grad_norm.data());
  w.write_floats("metrics/tokens_per_s", {s}, m.tokens_per_s.data());
}

// Trains one output on `world`; returns 0, or kExitCheckpointed after a signal. `device`
// is this rank's device.
int train_stage(const MpiWorld& world, const TrainConfig& cfg, c10::Device device) {
  // A folder output (lora, full) is built whole in DIR.partial/, train.h5 last, and then
  // renamed to DIR: a folder under its final name always holds its train.h5.
  const bool dir_output = cfg.mode != "moe";
  const std::string artifact = dir_output ? (fs::path(cfg.output) / "train.h5").string() : cfg.output;
  const std::string staging = folder_partial_path(cfg.output);
  const std::string ckpt_path = cfg.output + ".ckpt.h5";
  StageSpec spec = train_spec(cfg, artifact);
  if (dir_output) spec.folder = cfg.output;
  int code = 0;
  stage_run(world, spec, [&](const Provenance& prov) {
    if (cfg.force && world.is_root()) fs::remove(ckpt_path);
    ModelFiles files = model_files_load(cfg.model);
    if (cfg.mode == "full" && files.format != "hf")
      throw std::invalid_argument(cfg.model + ": --mode full needs a HF model folder (it writes one)");
    const auto dtype = cfg.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
    LlamaModel model = llama_from_weights(files.config, std::move(files.weights), device, dtype);
    int64_t model_params = 0;
    for (const auto& [name, t] : llama_named_weights(model)) model_params += t.numel();

    SftDataOptions dopt;
    dopt.prompt.style = prompt_style_parse(cfg.prompt_style);
    if (dopt.prompt.style == PromptStyle::chat) {
      if (!files.chat_template)
        throw std::invalid_argument(cfg.model + ": --prompt-format chat, but the model has no chat template kmoe knows");
      dopt.prompt.chat = files.chat_template;
    }
    dopt.chat_for_messages = files.chat_template;
    dopt.max_len = cfg.max_len;
    dopt.eos_id = sft_eos_id(*files.tokenizer, files.config.eos_token_ids, dopt.prompt);
    SftDataStats stats;
    const auto data = sft_load(cfg.data, *files.tokenizer, dopt, &stats);
    log_info("train: ", data.size(), " examples from ", stats.records, " records (", stats.truncated,
             " truncated to --max-len ", cfg.max_len, ", ", stats.dropped, " dropped: prompt alone fills --max-len)");

    TrainOptions topt = cfg.train;
    topt.checkpoint_path = ckpt_path;
    topt.model_params = model_params;
    torch::manual_seed(topt.seed);  // the adapter's initialisation
    TrainTarget target;
    std::unique_ptr<LoraSet> lora;
    std::unique_ptr<MoeLora> moe;
    at::Tensor router_load;  // --mode moe: [data files, keys, N] routing weight on this rank, over steps
    Communicator* comm_ptr = nullptr;
    const std::string name = "default";
    if (cfg.mode == "lora") {
      LoraAdapter adapter;
      if (!cfg.init_adapter.empty()) {
        adapter = peft_adapter_load(cfg.init_adapter, files.config, name);
        adapter.config.lora_dropout = cfg.lora.lora_dropout;
      } else {
        adapter = lora_adapter_init(name, cfg.lora, files.config);
      }
      lora_adapter_to(adapter, device, torch::kFloat32);
      lora_adapter_requires_grad(adapter, true);
      lora = std::make_unique<LoraSet>(files.config);
      lora->add(std::move(adapter));
      lora->activate(name);
      for (auto& [key, w] : lora->adapter(name).weights) {
        const std::string p = "layers." + std::to_string(key.first) + "." + linear_module_name(key.second) + ".";
        target.params.emplace_back(p + "lora_A", w.A);
        target.params.emplace_back(p + "lora_B", w.B);
      }
      target.hook = lora.get();
      target.set_training = [&](bool on) { lora->set_training(on); };
    } else if (cfg.mode == "moe") {
      MoeConfig mc;
      mc.top_k = cfg.top_k;
      mc.aux_loss_coef = cfg.aux_loss_coef;
      mc.train_experts = !cfg.routers_only;
      mc.expert_dropout = cfg.lora.lora_dropout;
      moe = std::make_unique<MoeLora>(files.config, moe_load_experts(cfg.adapters, files.config), mc, topt.seed);
      moe->to(device, torch::kFloat32);
      target.params = moe->trainable_parameters();
      target.hook = moe.get();
      const int64_t sources = static_cast<int64_t>(cfg.data.size());
      router_load =
          torch::zeros({sources, static_cast<int64_t>(moe->keys().size()), moe->expert_count()}, torch::kFloat64);
      target.set_training = [&](bool on) { moe->set_training(on); };
      target.before_forward = [&](const at::Tensor& token_source) { moe->set_token_mask(token_source); };
      // Called after each micro-batch's forward: takes its aux loss and router load (the
      // mixture's groups are the data files of the micro-batch's tokens, up to the last seen).
      target.aux_loss = [&]() {
        at::Tensor aux = moe->aux_loss();
        const at::Tensor by_source = moe->router_load_by_group();
        router_load.narrow(0, 0, by_source.size(0)).add_(by_source);
        moe->reset_statistics();
        return aux;
      };
      // The checkpoint holds the load summed over ranks (collective, like the save itself);
      // after a resume rank 0 carries it and the others start from zero.
      target.state = [&]() {
        at::Tensor total =
            router_load.to(device, /*non_blocking=*/false, /*copy=*/true);  // a copy: the sum is in place
        comm_ptr->allreduce_sum(total);
        return std::map<std::string, at::Tensor>{{"router_load_by_source", total.to(torch::kCPU)}};
      };
      target.restore_state = [&](const std::map<std::string, at::Tensor>& m) {
        const auto it = m.find("router_load_by_source");
        if (it == m.end() || !it->second.sizes().equals(router_load.sizes()))
          throw std::runtime_error(ckpt_path +
                                   ": no router_load_by_source [data files, keys, experts] in the checkpoint");
        router_load = world.is_root() ? it->second.to(torch::kFloat64) : torch::zeros_like(router_load);
      };
    } else {  // full
      for (auto& [pname, t] : llama_named_weights(model)) {
        t.requires_grad_(true);
        target.params.emplace_back(pname, t);
      }
    }
    Communicator comm(world, device);
    comm_ptr = &comm;
    const TrainResult res = train_run(model, target, data, topt, comm, prov);
    if (res.interrupted) {
      code = kExitCheckpointed;
      return;
    }
    if (cfg.mode == "moe") {
      at::Tensor total = router_load.to(device, /*non_blocking=*/false, /*copy=*/true);  // a copy: the sum is in place
      comm.allreduce_sum(total);
      ArtifactWriter w(world.comm, artifact, prov);
      moe_write(w, *moe);
      write_metrics(w, res.metrics);
      total = total.to(torch::kCPU);
      artifact_write_tensor(w, "router_load", total.sum(0).to(torch::kFloat32));
      w.set_attr("router_load", "layout",
                 std::string("moe keys x experts: routing weight (renormalised top-k gate) summed over real tokens"));
      artifact_write_tensor(w, "router_load_by_source", total.to(torch::kFloat32));
      w.set_attr("router_load_by_source", "layout",
                 std::string("sources x moe keys x experts: router_load per data file"));
      w.write_strings("sources", cfg.data);
      w.set_attr("/", "examples", static_cast<int64_t>(data.size()));
      w.set_attr("/", "resumed_from_step", res.resumed_from);
      w.commit();
      if (world.is_root()) fs::remove(ckpt_path);
      log_info("train: ", res.steps, " steps, final loss ", res.metrics.loss.back(), " -> ", cfg.output);
      return;
    }
    if (world.is_root()) {
      if (cfg.mode == "lora") {
        LoraAdapter saved = lora->adapter(name);
        for (auto& [key, w] : saved.weights) {
          w.A = w.A.detach().to(torch::kCPU, torch::kFloat32).contiguous();
          w.B = w.B.detach().to(torch::kCPU, torch::kFloat32).contiguous();
        }
        peft_adapter_save(saved, staging);
      } else {
        hf_folder_save(cfg.model, llama_named_weights(model), staging);
      }
    }
    MPI_Barrier(world.comm);
    ArtifactWriter w(world.comm, (fs::path(staging) / "train.h5").string(), prov);
    write_metrics(w, res.metrics);
    w.set_attr("/", "examples", static_cast<int64_t>(data.size()));
    w.set_attr("/", "examples_truncated", stats.truncated);
    w.set_attr("/", "examples_dropped", stats.dropped);
    w.set_attr("/", "resumed_from_step", res.resumed_from);
    w.set_attr("/", "exit_code_on_signal", static_cast<int64_t>(kExitCheckpointed));
    w.commit();
    std::string failed;
    if (world.is_root()) {
      try {
        folder_commit(staging, cfg.output);
        fs::remove(ckpt_path);
      } catch (const std::exception& e) {
        failed = e.what();
      }
    }
    int bad = failed.empty() ? 0 : 1;
    MPI_Bcast(&bad, 1, MPI_INT, 0, world.comm);
    if (bad) throw std::runtime_error(world.is_root() ? failed : cfg.output + ": the folder could not be committed (see rank 0)");
    const float last = res.metrics.loss.empty() ? 0.f : res.metrics.loss.back();
    log_info("train: ", res.steps, " steps, final loss ", last, " -> ", cfg.output);
  });
  return code;
}

const char* kSignalHelp =
    "Checkpoints: OUTPUT.ckpt.h5 every --checkpoint-every steps and on SIGTERM or SIGUSR1, after which\n"
    "the run exits with code 75 (\"checkpointed, requeue me\"; SLURM: requeue on 75). Running the same\n"
    "command again resumes from the checkpoint and gives the same weights as an uninterrupted run. A\n"
    "checkpoint made with another model, data or options is refused, naming what differs (--force starts\n"
    "over). --micro-batch, --threads and the number of ranks may change between runs: the global batch\n"
    "is an option, so the optimizer step is the same (up to rounding; dropout masks restart from the\n"
    "seed when the number of ranks changes).";

void add_training_options(po::options_description& d, bool with_output) {
  d.add_options()("model", po::value<std::string>()->required()->value_name("PATH"), "base model: HF folder or .gguf")(
      "data", po::value<std::vector<std::string>>()->required()->multitoken()->value_name("FILE..."),
      "JSONL files (records: messages | text | instruction/output | question/answer, per line)");
  if (with_output)
    d.add_options()("output", po::value<std::string>()->required()->value_name("PATH"),
                    "adapter folder (lora), HF folder (full) or moe.h5 (moe)");
  d.add_options()("prompt-format", po::value<std::string>()->default_value("alpaca"),
                  "alpaca or chat (the model's chat template), as for score/eval")(
      "epochs", po::value<int64_t>()->default_value(-1), "epochs (default 3; 5 for --mode moe)")(
      "max-steps", po::value<int64_t>()->default_value(0), "optimizer steps instead of epochs (0: use --epochs)")(
      "global-batch", po::value<int64_t>()->default_value(32), "sequences per optimizer step, over all ranks")(
      "micro-batch", po::value<int64_t>()->default_value(4), "sequences per forward on one rank")(
      "lr", po::value<double>()->default_value(5e-5), "peak learning rate")(
      "warmup-ratio", po::value<double>()->default_value(0.0), "warm-up steps as a fraction of all steps")(
      "warmup-steps", po::value<int64_t>()->default_value(-1), "warm-up steps (overrides --warmup-ratio)")(
      "lr-decay", po::value<std::string>()->default_value("cosine"), "cosine, linear or constant")(
      "weight-decay", po::value<double>()->default_value(-1), "AdamW weight decay (default 0; 1e-4 for --mode moe)")(
      "max-grad-norm", po::value<double>()->default_value(1.0), "gradient clipping (0: off)")(
      "max-len", po::value<int64_t>()->default_value(1024), "tokens per sequence (the response is cut)")(
      "seed", po::value<uint64_t>()->default_value(42), "initialisation, shuffling and dropout")(
      "checkpoint-every", po::value<int64_t>()->default_value(100), "steps between checkpoints (0: on signals only)")(
      "log-every", po::value<int64_t>()->default_value(10), "steps between metric lines")(
      "lora-r", po::value<int64_t>()->default_value(16), "LoRA rank")(
      "lora-alpha", po::value<double>()->default_value(16.0), "LoRA alpha")(
      "lora-dropout", po::value<double>()->default_value(0.05), "dropout on the LoRA input while training")(
      "lora-targets", po::value<std::string>()->default_value("q_proj,v_proj"), "adapted modules, comma-separated")(
      "use-rslora", po::bool_switch(), "scale alpha / sqrt(r) instead of alpha / r")(
      "device", po::value<std::string>()->default_value("auto"), "auto, cpu or cuda (the GPU of the node-local rank)")(
      "dtype", po::value<std::string>()->default_value("auto"),
      "base weights: float32 or bfloat16 (auto: bfloat16 on cuda); trained tensors stay float32")(
      "force", po::bool_switch(), "retrain even if the output is complete; discard a checkpoint")(
      "threads", po::value<int>(), "CPU threads per rank (default: libtorch's)");
}

int train_main(const po::variables_map& vm) {
  const MpiWorld& world = mpi_world();
  TrainConfig cfg = config_from(vm, "kmoe train");
  cfg.output = path_normalize(vm["output"].as<std::string>());
  if (vm.count("init-adapter") && cfg.mode != "lora") throw UsageError("kmoe train: --init-adapter is for --mode lora");
  if (cfg.mode == "moe" && cfg.adapters.size() < 2)
    throw UsageError("kmoe train: --mode moe needs --adapters DIR DIR...");
  const c10::Device device =
      cfg.device == "cuda" ? c10::Device(torch::kCUDA, world.local_rank) : c10::Device(torch::kCPU);
  return train_stage(world, cfg, device);
}

int bank_main(const po::variables_map& vm) {
  const std::string action = vm["action"].as<std::string>();
  if (action != "build") throw UsageError("kmoe bank: unknown action '" + action + "' (valid: build)");
  const MpiWorld& world = mpi_world();
  TrainConfig cfg = config_from(vm, "kmoe bank build");
  cfg.mode = "lora";
  const std::string dir = path_normalize(vm["output-dir"].as<std::string>());
  const c10::Device device =
      cfg.device == "cuda" ? c10::Device(torch::kCUDA, world.local_rank) : c10::Device(torch::kCPU);
  std::vector<std::string> stems;
  for (const auto& f : cfg.data) {
    const std::string stem = fs::path(f).stem().string();
    for (size_t i = 0; i < stems.size(); ++i) {
      if (stems[i] == stem)
        throw UsageError("kmoe bank build: " + cfg.data[i] + " and " + f + " would both make adapter '" + stem + "'");
    }
    stems.push_back(stem);
  }
  const int64_t n = static_cast<int64_t>(stems.size());
  StageSpec spec = train_spec(cfg, (fs::path(dir) / "bank.h5").string());
  spec.stage = "bank-build";
  int code = 0;
  stage_run(world, spec, [&](const Provenance& prov) {
    if (world.is_root()) fs::create_directories(dir);
    MPI_Barrier(world.comm);
    // Each rank trains its datasets alone, on a world of one rank.
    MpiWorld self = world;
    self.comm = MPI_COMM_SELF;
    self.rank = 0;
    self.size = 1;
    const Range mine = static_split(n, world.rank, world.size);
    for (int64_t i = mine.begin; i < mine.end && code == 0; ++i) {
      TrainConfig one = cfg;
      one.data = {cfg.data[i]};
      one.output = (fs::path(dir) / stems[i]).string();
      one.lora.base_model_name_or_path = cfg.model;
      log_info("bank build: rank ", world.rank, ": adapter '", stems[i], "' from ", cfg.data[i]);
      code = train_stage(self, one, device);
    }
    MPI_Allreduce(MPI_IN_PLACE, &code, 1, MPI_INT, MPI_MAX, world.comm);
    if (code != 0) return;
    std::vector<float> final_loss(n, 0.f);
    std::vector<int64_t> steps(n, 0);
    std::vector<std::string> paths;
    for (int64_t i = 0; i < n; ++i) {
      const std::string adapter = (fs::path(dir) / stems[i]).string();
      paths.push_back(adapter);
      if (!world.is_root()) continue;
      ArtifactReader r((fs::path(adapter) / "train.h5").string());
      const auto loss = r.read_floats("metrics/loss");
      final_loss[i] = loss.empty() ? 0.f : loss.back();
      steps[i] = static_cast<int64_t>(loss.size());
    }
    ArtifactWriter w(world.comm, spec.output, prov);
    w.write_strings("adapters", stems);
    w.write_strings("adapter_paths", paths);
    w.write_strings("datasets", cfg.data);
    w.write_floats("final_loss", {n}, final_loss.data());
    w.write_int64("steps", {n}, steps.data());
    w.commit();
    log_info("bank build: ", n, " adapters in ", dir);
  });
  return code;
}

}  // namespace

Subcommand train_subcommand() {
  return {"train",
          std::string("Supervised fine-tuning with data parallelism: one LoRA (--mode lora -> PEFT adapter\n"
                      "folder + train.h5), every base weight (--mode full -> HF folder + train.h5) or the\n"
                      "mixture of LoRA experts (--mode moe -> moe.h5). Loss on response tokens only.\n\n")
              .append(kSignalHelp),
          [](po::options_description& d, po::positional_options_description&) {
            d.add_options()("mode", po::value<std::string>()->default_value("lora"), "lora, full or moe");
            add_training_options(d, true);
            d.add_options()("init-adapter", po::value<std::string>()->value_name("DIR"),
                            "--mode lora: continue from this PEFT adapter")(
                "adapters", po::value<std::vector<std::string>>()->multitoken()->value_name("DIR..."),
                "--mode moe: the N PEFT adapters that initialise the experts")(
                "top-k", po::value<int64_t>()->default_value(2), "--mode moe: experts kept per token")(
                "aux-loss-coef", po::value<double>()->default_value(0.0),
                "--mode moe: Switch load-balancing loss coefficient")(
                "routers-only", po::bool_switch(), "--mode moe: train the routers, keep the experts fixed");
          },
          train_main};
}

Subcommand bank_subcommand() {
  return {"bank",
          std::string("'kmoe bank build': one LoRA per open dataset file (DIR/<file stem>/, PEFT layout) and\n"
                      "DIR/bank.h5 listing them; ranks split the datasets, each finished adapter is committed\n"
                      "and a re-run skips it.\n\n")
              .append(kSignalHelp),
          [](po::options_description& d, po::positional_options_description& p) {
            d.add_options()("action", po::value<std::string>()->required(), "build");
            p.add("action", 1);
            add_training_options(d, false);
            d.add_options()("output-dir", po::value<std::string>()->required()->value_name("DIR"), "the bank folder");
          },
          bank_main};
}

}  // namespace kmoe

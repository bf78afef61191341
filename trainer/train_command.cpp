// See train_command.h. One function, train_one(), trains one output (an adapter folder,
// an HF folder or moe.h5; what trains and how it is saved is the mode's, train_modes.h)
// on a given MPI world; train_stage calls it on the job's world,
// bank_build_stage on a one-rank world per dataset (ranks split the datasets). The
// options that change the result go into the provenance; --micro-batch, --threads and the
// number of ranks do not (they change rounding only), so a requeued job may resume from a
// checkpoint with another layout as long as the global batch is the same.
#include "trainer/train_command.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/formats/hf_export.h"
#include "data/formats/model_files.h"
#include "data/formats/peft_prompt.h"
#include "data/store/artifact.h"
#include "data/store/folder_commit.h"
#include "model/cpu_threads.h"
#include "model/lora.h"
#include "runtime/compute_dtype.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"
#include "runtime/output_guard.h"
#include "runtime/stage_runner.h"
#include "trainer/communicator.h"
#include "trainer/signals.h"
#include "trainer/train_loop.h"
#include "trainer/train_modes.h"

namespace kmoe {

namespace fs = std::filesystem;

namespace {

std::vector<LinearModule> parse_targets(const std::string& list) {
  std::vector<LinearModule> out;
  std::stringstream s(list);
  std::string item;
  while (std::getline(s, item, ',')) {
    if (item.empty()) continue;
    if (item == "all-linear") {  // as PEFT's target_modules="all-linear"
      out.insert(out.end(), std::begin(kAllLinearModules), std::end(kAllLinearModules));
      continue;
    }
    try {
      out.push_back(linear_module_parse(item));
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--lora-targets: ") + e.what());
    }
  }
  if (out.empty()) throw UsageError("--lora-targets names no module");
  return out;
}

// Checks and resolves the options train and bank build share (and sets libtorch's thread
// count); throws UsageError "WHO: ...".
TrainConfig config_resolve(const std::string& mode, const std::string& model, const std::vector<std::string>& data,
                           bool force, const TrainingFlags& f, const std::string& who) {
  TrainConfig c;
  c.mode = mode;
  if (c.mode != "lora" && c.mode != "full" && c.mode != "moe" && c.mode != "prompt" && c.mode != "lora+prompt")
    throw UsageError(who + ": --mode must be lora, full, moe, prompt or lora+prompt");
  c.model = model;
  for (const auto& arg : data) {
    try {
      const SftSource src = sft_source_parse(arg);
      c.data.push_back(src.path);
      c.data_fractions.push_back(src.fraction);
    } catch (const std::invalid_argument& e) {
      throw UsageError(who + ": " + e.what());
    }
  }
  c.prompt_style = f.prompt_format;
  c.max_len = f.max_len;
  c.lora.r = f.lora_r;
  c.lora.lora_alpha = f.lora_alpha;
  c.lora.lora_dropout = f.lora_dropout;
  c.lora_targets = f.lora_targets;
  c.lora.target_modules = parse_targets(c.lora_targets);
  c.lora.use_rslora = f.use_rslora;
  c.lora.base_model_name_or_path = c.model;
  auto& t = c.train;
  t.epochs = f.epochs;
  if (t.epochs < 0) t.epochs = c.mode == "moe" ? 5 : 3;  // METHOD.md §1.0 and §1.4
  t.max_steps = f.max_steps;
  t.global_batch = f.global_batch;
  t.micro_batch = f.micro_batch;
  t.lr = f.lr;
  t.warmup_ratio = f.warmup_ratio;
  t.warmup_steps = f.warmup_steps;
  c.lr_decay = f.lr_decay;
  try {
    t.lr_decay = lr_decay_parse(c.lr_decay);
    prompt_style_parse(c.prompt_style);
  } catch (const std::invalid_argument& e) {
    throw UsageError(who + ": " + e.what());
  }
  t.optimizer = f.optimizer;
  if (t.optimizer != "adamw" && t.optimizer != "adafactor")
    throw UsageError(who + ": --optimizer must be adamw or adafactor");
  t.adamw.weight_decay = f.weight_decay;
  if (t.adamw.weight_decay < 0) t.adamw.weight_decay = c.mode == "moe" ? 1e-4 : 0.0;  // METHOD.md §1.4
  t.max_grad_norm = f.max_grad_norm;
  t.seed = f.seed;
  t.checkpoint_every = f.checkpoint_every;
  t.log_every = f.log_every;
  c.device = f.device;
  c.dtype = f.dtype;
  c.force = force;
  if (c.device == "auto") c.device = torch::cuda::is_available() ? "cuda" : "cpu";
  if (c.device != "cpu" && c.device != "cuda") throw UsageError(who + ": --device must be auto, cpu or cuda");
  if (c.device == "cuda" && !torch::cuda::is_available())
    throw UsageError(who +
                     ": --device cuda, but libtorch sees no CUDA device on this machine (use --device cpu or auto)");
  if (c.dtype == "auto" && c.mode == "full") c.dtype = "float32";
  try {
    const ComputeDtype d = compute_dtype_resolve(c.dtype, c.device);
    c.dtype = d.name;
    if (!d.warning.empty()) log_warn(who.rfind("kmoe ", 0) == 0 ? who.substr(5) : who, ": ", d.warning);
  } catch (const std::invalid_argument& e) {
    throw UsageError(who + ": " + e.what());
  }
  if (c.mode == "full" && c.dtype != "float32") throw UsageError(who + ": --mode full trains in float32 only");
  if (t.global_batch <= 0 || t.micro_batch <= 0 || c.max_len < 2 || t.lr <= 0 || c.lora.r <= 0)
    throw UsageError(who + ": --global-batch, --micro-batch, --lr and --lora-r must be positive, --max-len >= 2");
  if (t.max_steps <= 0 && t.epochs <= 0) throw UsageError(who + ": give --epochs or --max-steps");
  cpu_threads_set(f.threads);  // 0: libtorch's default
  return c;
}

c10::Device rank_device(const MpiWorld& world, const TrainConfig& c) {
  return c.device == "cuda" ? c10::Device(torch::kCUDA, world.local_rank) : c10::Device(torch::kCPU);
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
  if (c.mode == "lora" || c.mode == "lora+prompt") {
    spec.options["lora_r"] = c.lora.r;
    spec.options["lora_alpha"] = c.lora.lora_alpha;
    spec.options["lora_dropout"] = c.lora.lora_dropout;
    spec.options["lora_targets"] = c.lora_targets;
    spec.options["use_rslora"] = c.lora.use_rslora;
  }
  if (t.optimizer != "adamw") spec.options["optimizer"] = t.optimizer;
  if ((c.mode == "prompt" && c.init_adapter.empty()) || c.mode == "lora+prompt") {
    spec.options["prompt_tokens"] = c.prompt_tokens;
    spec.options["prompt_init"] = c.prompt_init;
    if (c.prompt_init == "text") spec.options["prompt_init_text"] = c.prompt_init_text;
  }
  if (c.mode == "moe") {
    spec.options["top_k"] = c.top_k;
    spec.options["aux_loss_coef"] = c.aux_loss_coef;
    spec.options["routers_only"] = c.routers_only;
    // Only when set, so that the artifacts of runs made before the option stay complete.
    if (c.expert_lr_scale != 1.0) spec.options["expert_lr_scale"] = c.expert_lr_scale;
    spec.options["lora_dropout"] = c.lora.lora_dropout;
  }
  if (std::any_of(c.data_fractions.begin(), c.data_fractions.end(), [](double f) { return f < 1; }))
    spec.options["data_fractions"] = c.data_fractions;
  spec.inputs = {{"model", c.model}};
  for (size_t i = 0; i < c.data.size(); ++i) spec.inputs.emplace_back("data/" + std::to_string(i), c.data[i]);
  if (!c.init_adapter.empty()) spec.inputs.emplace_back("init_adapter", c.init_adapter);
  if (!c.soft_prompt.empty()) spec.inputs.emplace_back("soft_prompt", c.soft_prompt);
  for (size_t i = 0; i < c.adapters.size(); ++i)
    spec.inputs.emplace_back("adapter/" + std::to_string(i), c.adapters[i]);
  return spec;
}

// The SFT examples of cfg.data in the model's prompt format; logs what was kept.
std::vector<SftExample> train_data_load(const TrainConfig& cfg, const ModelFiles& files, SftDataStats* stats) {
  SftDataOptions dopt;
  dopt.prompt.style = prompt_style_parse(cfg.prompt_style);
  if (dopt.prompt.style == PromptStyle::chat) {
    dopt.prompt.chat = model_chat_template(files);
  }
  dopt.chat_for_messages = files.chat_template;
  dopt.max_len = cfg.max_len;
  dopt.eos_id = sft_eos_id(*files.tokenizer, files.config.eos_token_ids, dopt.prompt);
  auto data = sft_load(cfg.data, *files.tokenizer, dopt, stats);
  const size_t loaded = data.size();
  data = sft_sample_sources(std::move(data), cfg.data_fractions, cfg.train.seed, &stats->source_examples);
  log_info("train: ", data.size(), " examples from ", stats->records, " records (", stats->truncated,
           " truncated to --max-len ", cfg.max_len, ", ", stats->dropped, " dropped: prompt alone fills --max-len",
           data.size() < loaded ? ", a share of some files drawn by their --data fractions" : "", ")");
  return data;
}

// Collective, for a folder output once the mode has filled `staging` (DIR.partial/) on
// rank 0: writes train.h5 into it last, renames it to `output` and removes `ckpt_path`.
void folder_finish(const MpiWorld& world, const Provenance& prov, const TrainResult& res, const SftDataStats& stats,
                   const std::vector<std::string>& sources, int64_t examples, const std::string& staging,
                   const std::string& output, const std::string& ckpt_path) {
  MPI_Barrier(world.comm);
  ArtifactWriter w(world.comm, (fs::path(staging) / "train.h5").string(), prov);
  write_metrics(w, res.metrics);
  w.write_strings("sources", sources);
  w.write_int64("source_examples", {static_cast<int64_t>(stats.source_examples.size())}, stats.source_examples.data());
  w.set_attr("/", "examples", examples);
  w.set_attr("/", "examples_truncated", stats.truncated);
  w.set_attr("/", "examples_dropped", stats.dropped);
  w.set_attr("/", "resumed_from_step", res.resumed_from);
  w.set_attr("/", "exit_code_on_signal", static_cast<int64_t>(kExitCheckpointed));
  w.commit();
  std::string failed;
  if (world.is_root()) {
    try {
      folder_commit(staging, output);
      fs::remove(ckpt_path);
    } catch (const std::exception& e) {
      failed = e.what();
    }
  }
  int bad = failed.empty() ? 0 : 1;
  MPI_Bcast(&bad, 1, MPI_INT, 0, world.comm);
  if (bad)
    throw std::runtime_error(world.is_root() ? failed : output + ": the folder could not be committed (see rank 0)");
}

// Trains one output on `world`; exit_code 0, or kExitCheckpointed after a signal. `device`
// is this rank's device. What trains and what is saved is the mode's (train_modes.h).
StageOutcome train_one(const MpiWorld& world, const TrainConfig& cfg, c10::Device device) {
  // A folder output (lora, full) is built whole in DIR.partial/, train.h5 last, and then
  // renamed to DIR: a folder under its final name always holds its train.h5.
  const bool dir_output = train_mode_writes_folder(cfg.mode);
  const std::string artifact = dir_output ? (fs::path(cfg.output) / "train.h5").string() : cfg.output;
  const std::string staging = folder_partial_path(cfg.output);
  const std::string ckpt_path = cfg.output + ".ckpt.h5";
  StageSpec spec = train_spec(cfg, artifact);
  if (dir_output) spec.folder = cfg.output;
  int code = 0;
  StageOutcome outcome = stage_run(world, spec, [&](const Provenance& prov) {
    if (cfg.force && world.is_root()) fs::remove(ckpt_path);
    ModelFiles files = model_files_load(cfg.model);
    if (cfg.mode == "full" && files.format != "hf")
      throw std::invalid_argument(cfg.model + ": --mode full needs a HF model folder (it writes one)");
    const auto dtype = cfg.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
    LlamaModel model = llama_from_weights(files.config, std::move(files.weights), device, dtype);
    if (!cfg.soft_prompt.empty())  // frozen: ProMoT's second stage
      peft_prompt_apply(cfg.soft_prompt, model);
    SftDataStats stats;
    const auto data = train_data_load(cfg, files, &stats);

    TrainLoopOptions topt = cfg.train;
    topt.checkpoint_path = ckpt_path;
    topt.model_params = 0;
    for (const auto& [name, t] : llama_named_weights(model)) topt.model_params += t.numel();
    torch::manual_seed(topt.seed);  // the adapter's initialisation
    const auto mode = train_mode_make({world, cfg, files.config, model, *files.tokenizer, device, ckpt_path});
    Communicator comm(world, device);
    const TrainResult res = train_run(model, mode->target(comm), data, topt, comm, prov);
    if (res.interrupted) {
      code = kExitCheckpointed;
      return;
    }
    const auto examples = static_cast<int64_t>(data.size());
    mode->save({world, comm, prov, res, examples, stats.source_examples, cfg.output, staging});
    if (dir_output) {
      folder_finish(world, prov, res, stats, cfg.data, examples, staging, cfg.output, ckpt_path);
    } else if (world.is_root()) {
      fs::remove(ckpt_path);
    }
    const float last = res.metrics.loss.empty() ? 0.f : res.metrics.loss.back();
    log_info("train: ", res.steps, " steps, final loss ", last, " -> ", cfg.output);
  });
  outcome.exit_code = code;
  return outcome;
}

}  // namespace

StageOutcome train_stage(const MpiWorld& world, const TrainOptions& options) {
  if (options.model.empty() || options.data.empty() || options.output.empty())
    throw UsageError("kmoe train: --model, --data and --output are required");
  TrainConfig cfg =
      config_resolve(options.mode, options.model, options.data, options.force, options.training, "kmoe train");
  cfg.output = path_normalize(options.output);
  cfg.init_adapter = options.init_adapter;
  cfg.adapters = options.adapters;
  cfg.top_k = options.top_k;
  cfg.aux_loss_coef = options.aux_loss_coef;
  cfg.routers_only = options.routers_only;
  cfg.expert_lr_scale = options.expert_lr_scale;
  if (cfg.expert_lr_scale != 1.0) {
    if (cfg.mode != "moe") throw UsageError("kmoe train: --expert-lr-scale is for --mode moe");
    if (cfg.routers_only) throw UsageError("kmoe train: --expert-lr-scale with --routers-only: the experts do not train");
    if (!(cfg.expert_lr_scale > 0) || !std::isfinite(cfg.expert_lr_scale))
      throw UsageError("kmoe train: --expert-lr-scale must be positive");
  }
  cfg.soft_prompt = options.soft_prompt;
  cfg.prompt_tokens = options.prompt_tokens;
  cfg.prompt_init = options.prompt_init;
  cfg.prompt_init_text = options.prompt_init_text;
  if (!cfg.init_adapter.empty() && cfg.mode != "lora" && cfg.mode != "prompt")
    throw UsageError("kmoe train: --init-adapter is for --mode lora and --mode prompt");
  if (cfg.mode == "prompt" || cfg.mode == "lora+prompt") {
    if (!cfg.soft_prompt.empty())
      throw UsageError("kmoe train: --mode " + cfg.mode +
                       " trains a soft prompt; to continue one (mode prompt), give it as --init-adapter");
    if (cfg.prompt_init != "vocab" && cfg.prompt_init != "text")
      throw UsageError("kmoe train: --prompt-init must be vocab or text");
    if (cfg.prompt_init == "text" && cfg.prompt_init_text.empty())
      throw UsageError("kmoe train: --prompt-init text needs --prompt-init-text");
    if (cfg.prompt_tokens <= 0) throw UsageError("kmoe train: --prompt-tokens must be positive");
  }
  if (cfg.mode == "moe" && cfg.adapters.size() < 2)
    throw UsageError("kmoe train: --mode moe needs --adapters DIR DIR...");
  return train_one(world, cfg, rank_device(world, cfg));
}

StageOutcome bank_build_stage(const MpiWorld& world, const BankBuildOptions& options) {
  if (options.model.empty() || options.data.empty() || options.output_dir.empty())
    throw UsageError("kmoe bank build: --model, --data and --output-dir are required");
  const TrainConfig cfg =
      config_resolve("lora", options.model, options.data, options.force, options.training, "kmoe bank build");
  const std::string dir = path_normalize(options.output_dir);
  const c10::Device device = rank_device(world, cfg);
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
  std::vector<std::string> paths;
  for (const auto& stem : stems) paths.push_back((fs::path(dir) / stem).string());
  StageSpec spec = train_spec(cfg, (fs::path(dir) / "bank.h5").string());
  spec.stage = "bank-build";
  int code = 0;
  // Trains this rank's datasets (each rank alone, on a world of one rank); every rank
  // ends with the worst exit status of all in `code`.
  auto train_all = [&] {
    if (world.is_root()) fs::create_directories(dir);
    MPI_Barrier(world.comm);
    MpiWorld self = world;
    self.comm = MPI_COMM_SELF;
    self.rank = 0;
    self.size = 1;
    const Range mine = static_split(n, world.rank, world.size);
    for (int64_t i = mine.begin; i < mine.end && code == 0; ++i) {
      TrainConfig one = cfg;
      one.data = {cfg.data[i]};
      one.data_fractions = {cfg.data_fractions[i]};
      one.output = paths[i];
      one.lora.base_model_name_or_path = cfg.model;
      log_info("bank build: rank ", world.rank, ": adapter '", stems[i], "' from ", cfg.data[i]);
      code = train_one(self, one, device).exit_code;
    }
    MPI_Allreduce(MPI_IN_PLACE, &code, 1, MPI_INT, MPI_MAX, world.comm);
  };
  if (options.no_index) {  // a job array's slice: adapters only; bank.h5 is written by a run that lists all
    train_all();
    StageOutcome outcome;
    outcome.exit_code = code;
    outcome.outputs = paths;
    return outcome;
  }
  StageOutcome outcome = stage_run(world, spec, [&](const Provenance& prov) {
    train_all();
    if (code != 0) return;
    std::vector<float> final_loss(n, 0.f);
    std::vector<int64_t> steps(n, 0);
    for (int64_t i = 0; i < n; ++i) {
      if (!world.is_root()) continue;
      ArtifactReader r((fs::path(paths[i]) / "train.h5").string());
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
  outcome.exit_code = code;
  outcome.outputs.insert(outcome.outputs.end(), paths.begin(), paths.end());
  return outcome;
}

}  // namespace kmoe

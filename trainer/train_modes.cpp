// See train_modes.h. Each mode owns what its target's hooks point at (the LoraSet, the
// MoeLora and its router load, or nothing beyond the base model), so it must outlive
// train_run.
#include "trainer/train_modes.h"

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <random>
#include <stdexcept>

#include "data/formats/hf_export.h"
#include "data/formats/moe_file.h"
#include "data/formats/peft_adapter.h"
#include "data/formats/peft_prompt.h"
#include "data/store/artifact_tensor.h"
#include "model/moe_lora.h"

namespace kmoe {

namespace {

// One LoRA adapter "default": a fresh one (cfg.lora) or --init-adapter's, whose dropout is
// replaced by --lora-dropout. Saved as a float32 PEFT folder.
class LoraMode final : public TrainMode {
 public:
  explicit LoraMode(const TrainModeInputs& in) : lora_(in.base) {
    const TrainConfig& cfg = in.cfg;
    LoraAdapter adapter;
    if (!cfg.init_adapter.empty()) {
      adapter = peft_adapter_load(cfg.init_adapter, in.base, kName);
      adapter.config.lora_dropout = cfg.lora.lora_dropout;
    } else {
      adapter = lora_adapter_init(kName, cfg.lora, in.base);
    }
    lora_adapter_to(adapter, in.device, torch::kFloat32);
    lora_adapter_requires_grad(adapter, true);
    lora_.add(std::move(adapter));
    lora_.activate(kName);
    for (auto& [key, w] : lora_.adapter(kName).weights) {
      const std::string p = "layers." + std::to_string(key.first) + "." + linear_module_name(key.second) + ".";
      target_.params.emplace_back(p + "lora_A", w.A);
      target_.params.emplace_back(p + "lora_B", w.B);
    }
    target_.hook = &lora_;
    target_.set_training = [this](bool on) { lora_.set_training(on); };
  }
  TrainTarget& target(Communicator&) override { return target_; }
  void save(const TrainModeSave& s) override {
    if (!s.world.is_root()) return;
    LoraAdapter saved = lora_.adapter(kName);
    for (auto& [key, w] : saved.weights) {
      w.A = w.A.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      w.B = w.B.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    }
    peft_adapter_save(saved, s.staging);
  }

 private:
  static constexpr const char* kName = "default";
  LoraSet lora_;
  TrainTarget target_;
};

// Every base weight, trained in place; saved as an HF folder beside the input's config and
// tokenizer files.
class FullMode final : public TrainMode {
 public:
  explicit FullMode(const TrainModeInputs& in) : model_(in.model), input_dir_(in.cfg.model) {
    for (auto& [pname, t] : llama_named_weights(model_)) {
      t.requires_grad_(true);
      target_.params.emplace_back(pname, t);
    }
  }
  TrainTarget& target(Communicator&) override { return target_; }
  void save(const TrainModeSave& s) override {
    if (s.world.is_root()) hf_folder_save(input_dir_, llama_named_weights(model_), s.staging);
  }

 private:
  const LlamaModel& model_;
  std::string input_dir_;
  TrainTarget target_;
};

// The mixture of the --adapters experts (METHOD.md §1.4): routers (and the experts unless
// --routers-only) train, with the Switch aux loss. It counts the routing weight per data
// file, key and expert over all steps (router_load_ [data files, keys, N], this rank's
// share) and checkpoints it, so moe.h5's router_load survives a resume.
class MoeMode final : public TrainMode {
 public:
  explicit MoeMode(const TrainModeInputs& in)
      : world_(in.world), device_(in.device), checkpoint_path_(in.checkpoint_path), sources_(in.cfg.data) {
    const TrainConfig& cfg = in.cfg;
    MoeConfig mc;
    mc.top_k = cfg.top_k;
    mc.aux_loss_coef = cfg.aux_loss_coef;
    mc.train_experts = !cfg.routers_only;
    mc.expert_dropout = cfg.lora.lora_dropout;
    moe_ = std::make_unique<MoeLora>(in.base, moe_load_experts(cfg.adapters, in.base), mc, cfg.train.seed);
    moe_->to(in.device, torch::kFloat32);
    target_.params = moe_->trainable_parameters();
    if (cfg.expert_lr_scale != 1.0) {
      for (const auto& [name, p] : target_.params)
        target_.lr_scales.push_back(name.find(".experts.") != std::string::npos ? cfg.expert_lr_scale : 1.0);
    }
    target_.hook = moe_.get();
    router_load_ = torch::zeros(
        {static_cast<int64_t>(sources_.size()), static_cast<int64_t>(moe_->keys().size()), moe_->expert_count()},
        torch::kFloat64);
    target_.set_training = [this](bool on) { moe_->set_training(on); };
    target_.before_forward = [this](const at::Tensor& token_source) { moe_->set_token_mask(token_source); };
    // Called after each micro-batch's forward: takes its aux loss and router load (the
    // mixture's groups are the data files of the micro-batch's tokens, up to the last seen).
    target_.aux_loss = [this]() {
      at::Tensor aux = moe_->aux_loss();
      const at::Tensor by_source = moe_->router_load_by_group();
      router_load_.narrow(0, 0, by_source.size(0)).add_(by_source);
      moe_->reset_statistics();
      return aux;
    };
    target_.restore_state = [this](const std::map<std::string, at::Tensor>& m) {
      const auto it = m.find("router_load_by_source");
      if (it == m.end() || !it->second.sizes().equals(router_load_.sizes()))
        throw std::runtime_error(checkpoint_path_ +
                                 ": no router_load_by_source [data files, keys, experts] in the checkpoint");
      router_load_ = world_.is_root() ? it->second.to(torch::kFloat64) : torch::zeros_like(router_load_);
    };
  }

  TrainTarget& target(Communicator& comm) override {
    // The checkpoint holds the load summed over ranks (collective, like the save itself);
    // after a resume rank 0 carries it and the others start from zero.
    target_.state = [this, &comm]() {
      return std::map<std::string, at::Tensor>{{"router_load_by_source", load_total(comm)}};
    };
    return target_;
  }

  void save(const TrainModeSave& s) override {
    const at::Tensor total = load_total(s.comm);
    ArtifactWriter w(s.world.comm, s.output, s.prov);
    moe_write(w, *moe_);
    write_metrics(w, s.result.metrics);
    artifact_write_tensor(w, "router_load", total.sum(0).to(torch::kFloat32));
    w.set_attr("router_load", "layout",
               std::string("moe keys x experts: routing weight (renormalised top-k gate) summed over real tokens"));
    artifact_write_tensor(w, "router_load_by_source", total.to(torch::kFloat32));
    w.set_attr("router_load_by_source", "layout",
               std::string("sources x moe keys x experts: router_load per data file"));
    w.write_strings("sources", sources_);
    w.write_int64("source_examples", {static_cast<int64_t>(s.source_examples.size())}, s.source_examples.data());
    w.set_attr("/", "examples", s.examples);
    w.set_attr("/", "resumed_from_step", s.result.resumed_from);
    w.commit();
  }

 private:
  // Collective: the router load summed over ranks, on the CPU.
  at::Tensor load_total(Communicator& comm) const {
    at::Tensor total = router_load_.to(device_, /*non_blocking=*/false, /*copy=*/true);  // a copy: the sum is in place
    comm.allreduce_sum(total);
    return total.to(torch::kCPU);
  }

  const MpiWorld& world_;
  c10::Device device_;
  std::string checkpoint_path_;
  std::vector<std::string> sources_;
  std::unique_ptr<MoeLora> moe_;
  at::Tensor router_load_;
  TrainTarget target_;
};

// The first value of a soft prompt of cfg.prompt_tokens virtual tokens [P, hidden], float32 on
// in.device: the embeddings of --prompt-init-text's tokens (cut or repeated to P, as PEFT's
// TEXT init), of P tokens drawn uniformly from the vocabulary (seeded), or --init-adapter's
// soft prompt (mode prompt only). Fills saved's init fields.
at::Tensor soft_prompt_init(const TrainModeInputs& in, bool from_init_adapter, SoftPrompt& saved) {
  const TrainConfig& cfg = in.cfg;
  const int64_t p = cfg.prompt_tokens;
  at::Tensor init;
  if (from_init_adapter) {
    const SoftPrompt from = peft_prompt_load(cfg.init_adapter, in.base);
    init = from.embeddings;
    saved.init = from.init;
    saved.init_text = from.init_text;
  } else {
    std::vector<int64_t> ids;
    if (cfg.prompt_init == "text") {
      for (const int32_t id : in.tokenizer.encode(cfg.prompt_init_text)) ids.push_back(id);
      if (ids.empty()) throw std::invalid_argument("--prompt-init-text has no tokens");
      const std::vector<int64_t> once = ids;
      while (static_cast<int64_t>(ids.size()) < p) ids.insert(ids.end(), once.begin(), once.end());
      ids.resize(p);
      saved.init = "TEXT";
      saved.init_text = cfg.prompt_init_text;
    } else {
      std::mt19937_64 rng(cfg.train.seed);
      std::uniform_int_distribution<int64_t> token(0, in.base.vocab_size - 1);
      for (int64_t i = 0; i < p; ++i) ids.push_back(token(rng));
      saved.init = "RANDOM";
    }
    torch::NoGradGuard no_grad;
    init = in.model.embed_tokens.index_select(0, torch::tensor(ids, torch::kInt64).to(in.model.embed_tokens.device()));
  }
  saved.base_model = cfg.model;
  return init.detach().to(in.device, torch::kFloat32).clone().requires_grad_(true);
}

// A soft prompt (ProMoT's stage 1, METHOD.md §3), the model frozen, initialised by
// soft_prompt_init. Saved as a PEFT PROMPT_TUNING folder.
class PromptMode final : public TrainMode {
 public:
  explicit PromptMode(const TrainModeInputs& in) : model_(in.model), base_(in.base) {
    prompt_ = soft_prompt_init(in, !in.cfg.init_adapter.empty(), saved_);
    llama_set_soft_prompt(model_, prompt_);
    target_.params.emplace_back("soft_prompt", prompt_);
  }
  TrainTarget& target(Communicator&) override { return target_; }
  void save(const TrainModeSave& s) override { save_to(s, s.staging); }
  // Rank 0 writes the PEFT prompt-tuning folder `dir`.
  void save_to(const TrainModeSave& s, const std::string& dir) {
    if (!s.world.is_root()) return;
    saved_.embeddings = prompt_.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    peft_prompt_save(saved_, base_, dir);
  }

 private:
  LlamaModel& model_;
  ModelConfig base_;
  at::Tensor prompt_;
  SoftPrompt saved_;
  TrainTarget target_;
};

// A fresh LoRA and a soft prompt trained together from the start (ProMoT's "prompt and model
// trained jointly" baseline). Saved as the LoRA's PEFT folder with the soft prompt's PEFT
// folder in DIR/soft_prompt/ (use it with --adapters DIR --soft-prompt DIR/soft_prompt).
class LoraPromptMode final : public TrainMode {
 public:
  explicit LoraPromptMode(const TrainModeInputs& in) : lora_(in), prompt_(in) {}
  TrainTarget& target(Communicator& comm) override {
    target_ = lora_.target(comm);
    for (const auto& p : prompt_.target(comm).params) target_.params.push_back(p);
    return target_;
  }
  void save(const TrainModeSave& s) override {
    lora_.save(s);
    prompt_.save_to(s, (std::filesystem::path(s.staging) / "soft_prompt").string());
  }

 private:
  LoraMode lora_;
  PromptMode prompt_;
  TrainTarget target_;
};

}  // namespace

bool train_mode_writes_folder(const std::string& mode) {
  return mode != "moe";
}

std::unique_ptr<TrainMode> lora_mode(const TrainModeInputs& in) {
  return std::make_unique<LoraMode>(in);
}
std::unique_ptr<TrainMode> full_mode(const TrainModeInputs& in) {
  return std::make_unique<FullMode>(in);
}
std::unique_ptr<TrainMode> moe_mode(const TrainModeInputs& in) {
  return std::make_unique<MoeMode>(in);
}

std::unique_ptr<TrainMode> prompt_mode(const TrainModeInputs& in) {
  return std::make_unique<PromptMode>(in);
}

std::unique_ptr<TrainMode> lora_prompt_mode(const TrainModeInputs& in) {
  return std::make_unique<LoraPromptMode>(in);
}

std::unique_ptr<TrainMode> train_mode_make(const TrainModeInputs& in) {
  if (in.cfg.mode == "lora") return lora_mode(in);
  if (in.cfg.mode == "full") return full_mode(in);
  if (in.cfg.mode == "moe") return moe_mode(in);
  if (in.cfg.mode == "prompt") return prompt_mode(in);
  if (in.cfg.mode == "lora+prompt") return lora_prompt_mode(in);
  throw std::invalid_argument("train: unknown mode '" + in.cfg.mode + "' (lora, full, moe, prompt or lora+prompt)");
}

void write_metrics(ArtifactWriter& w, const TrainMetrics& m) {
  const int64_t s = static_cast<int64_t>(m.step.size());
  w.write_int64("metrics/step", {s}, m.step.data());
  w.write_floats("metrics/loss", {s}, m.loss.data());
  w.write_floats("metrics/lr", {s}, m.lr.data());
  w.write_floats("metrics/grad_norm", {s}, m.grad_norm.data());
  w.write_floats("metrics/tokens_per_s", {s}, m.tokens_per_s.data());
}

}  // namespace kmoe

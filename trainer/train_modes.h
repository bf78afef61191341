// The training modes of `kmoe train`, one factory each behind one interface: what a mode
// trains (the TrainTarget train_run drives, train_loop.h) and how it saves the result.
//   lora  one LoRA adapter (fresh, or continued from --init-adapter) -> a PEFT folder
//   full  every base weight, in place                                -> an HF folder
//   moe   the mixture of LoRA experts (routers, optionally experts)  -> moe.h5
//   prompt a soft prompt (ProMoT stage 1), the model frozen          -> a PEFT prompt-tuning folder
//   lora+prompt a fresh LoRA and a soft prompt trained jointly       -> the LoRA's PEFT folder, the
//               prompt's in DIR/soft_prompt/
// Folder modes (lora, full) fill DIR.partial/ on rank 0; train_command.cpp then adds
// train.h5 and commits the folder. File modes (moe) write their artifact themselves. A new
// mode is one more class in train_modes.cpp, a name in train_mode_make and its options in
// TrainConfig (and in train_spec's provenance, train_command.cpp).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/store/artifact.h"
#include "data/tokenizers/tokenizer.h"
#include "model/config.h"
#include "model/llama.h"
#include "model/lora.h"
#include "runtime/mpi_world.h"
#include "trainer/communicator.h"
#include "trainer/train_loop.h"

namespace kmoe {

// The resolved options of one training: formats parsed, defaults that depend on the mode
// filled in, device and dtype chosen (train_command.cpp's config_resolve).
struct TrainConfig {
  std::string mode = "lora";  // lora | full | moe | prompt | lora+prompt
  std::string model, output;
  std::vector<std::string> data;       // the files (--data FILE[:FRACTION] without the fraction)
  std::vector<double> data_fractions;  // per file: the share of its examples trained on (1: all)
  std::string prompt_style = "alpaca";
  int64_t max_len = 1024;
  LoraConfig lora;
  std::string lora_targets = "q_proj,v_proj";
  std::string init_adapter;           // lora: a PEFT LoRA to continue; prompt: a soft prompt to continue
  std::string soft_prompt;            // lora | full | moe: a frozen soft prompt put before every sequence
  int64_t prompt_tokens = 100;        // mode prompt: virtual tokens P
  std::string prompt_init = "vocab";  // mode prompt: vocab (embeddings of P random tokens) | text
  std::string prompt_init_text;       // mode prompt, init text: embeddings of its tokens, repeated to P
  std::vector<std::string> adapters;  // mode moe
  int64_t top_k = 2;
  double aux_loss_coef = 0;
  bool routers_only = false;
  double expert_lr_scale = 1.0;  // mode moe: the experts' lr is lr × this, the routers' lr
  TrainLoopOptions train;
  std::string lr_decay = "cosine";
  std::string device = "auto", dtype = "auto";
  bool force = false;
};

// Whether `mode` writes a folder (lora, full: DIR/ with DIR/train.h5 as the stage's
// artifact) rather than one artifact file (moe).
bool train_mode_writes_folder(const std::string& mode);

// What a mode is built from: the base model loaded on this rank's device.
struct TrainModeInputs {
  const MpiWorld& world;
  const TrainConfig& cfg;
  const ModelConfig& base;      // the base model's config
  LlamaModel& model;            // the base model (mode full trains its weights in place)
  const Tokenizer& tokenizer;   // the model's (mode prompt's text initialisation)
  c10::Device device;           // this rank's device
  std::string checkpoint_path;  // OUTPUT.ckpt.h5, named when its mode state is missing
};

// What a mode saves from, after a train_run that was not interrupted.
struct TrainModeSave {
  const MpiWorld& world;
  Communicator& comm;
  const Provenance& prov;
  const TrainResult& result;
  int64_t examples;                             // the training examples
  const std::vector<int64_t>& source_examples;  // of them, per data file
  std::string output;                           // file modes: the artifact to write (moe.h5)
  std::string staging;  // folder modes: DIR.partial/, which rank 0 fills (already removed or fresh)
};

// One training mode: what it trains (the TrainTarget the loop drives) and how it saves the
// result.
class TrainMode {
 public:
  virtual ~TrainMode() = default;
  // The target train_run drives over `comm` (the communicator it is given; moe sums its
  // checkpointed router load over it). Called once.
  virtual TrainTarget& target(Communicator& comm) = 0;
  // Collective. Folder modes: rank 0 writes the mode's files into s.staging (train.h5 and
  // the commit are the caller's). File modes: writes and commits s.output.
  virtual void save(const TrainModeSave& s) = 0;
};

// lora | full | moe | prompt (config_resolve has checked the name). Builds the mode's trainable
// tensors on in.device; the caller seeds torch first (a fresh LoRA's initialisation).
std::unique_ptr<TrainMode> train_mode_make(const TrainModeInputs& in);
std::unique_ptr<TrainMode> lora_mode(const TrainModeInputs& in);
std::unique_ptr<TrainMode> full_mode(const TrainModeInputs& in);
std::unique_ptr<TrainMode> moe_mode(const TrainModeInputs& in);
std::unique_ptr<TrainMode> prompt_mode(const TrainModeInputs& in);

// metrics/step, loss, lr, grad_norm and tokens_per_s: one row per logged step.
void write_metrics(ArtifactWriter& w, const TrainMetrics& m);

}  // namespace kmoe

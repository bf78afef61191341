// The training stages: `kmoe train` (mode lora | full | moe) and `kmoe bank build`, around
// train_run (train_loop.h). A run stopped by SIGTERM/SIGUSR1 after a checkpoint returns
// exit_code kExitCheckpointed (75, runtime/stage_runner.h): "run the same stage again to
// resume". The command lines are in launcher/commands/trainer.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

// The options `kmoe train` and `kmoe bank build` share, as the user gives them; the
// defaults are the command line's.
struct TrainingFlags {
  std::string prompt_format = "alpaca";        // alpaca or chat (the model's chat template)
  int64_t epochs = -1;                         // < 0: 3, or 5 for mode moe (METHOD.md §1.0, §1.4)
  int64_t max_steps = 0;                       // optimizer steps instead of epochs (0: use epochs)
  int64_t global_batch = 32;                   // sequences per optimizer step, over all ranks
  int64_t micro_batch = 4;                     // sequences per forward on one rank
  double lr = 5e-5;                            // peak learning rate
  double warmup_ratio = 0.0;                   // warm-up steps as a fraction of all steps
  int64_t warmup_steps = -1;                   // >= 0: warm-up steps (overrides warmup_ratio)
  std::string lr_decay = "cosine";             // cosine, linear or constant
  std::string optimizer = "adamw";             // adamw or adafactor (ProMoT's; transformers' Adafactor)
  double weight_decay = -1;                    // < 0: 0, or 1e-4 for mode moe (METHOD.md §1.4)
  double max_grad_norm = 1.0;                  // gradient clipping (0: off)
  int64_t max_len = 1024;                      // tokens per sequence (the response is cut)
  uint64_t seed = 42;                          // initialisation, shuffling and dropout
  int64_t checkpoint_every = 100;              // steps between checkpoints (0: on signals only)
  int64_t log_every = 10;                      // steps between metric lines
  int64_t lora_r = 16;                         // LoRA rank
  double lora_alpha = 16.0;                    // LoRA alpha
  double lora_dropout = 0.05;                  // dropout on the LoRA input while training (moe: on the experts')
  std::string lora_targets = "q_proj,v_proj";  // adapted modules, comma-separated
  bool use_rslora = false;                     // scale alpha / sqrt(r) instead of alpha / r
  std::string device = "auto";                 // auto, cpu or cuda (the GPU of the node-local rank)
  std::string dtype = "auto";                  // base weights: float32 or bfloat16 (auto: by device and mode)
  int threads = 0;                             // CPU threads per rank (0: libtorch's default)
};

// `kmoe train`: one LoRA (mode lora -> PEFT adapter folder + train.h5), every base weight
// (mode full -> HF folder + train.h5), the mixture of LoRA experts (mode moe -> moe.h5) or a
// soft prompt (mode prompt -> PEFT prompt-tuning folder + train.h5).
struct TrainOptions {
  std::string mode = "lora";          // lora, full, moe or prompt
  std::string model;                  // base model: HF folder or .gguf (required)
  std::vector<std::string> data;      // JSONL files (required)
  std::string output;                 // adapter folder (lora), HF folder (full) or moe.h5 (moe) (required)
  std::string init_adapter;           // mode lora: continue from this PEFT adapter; mode prompt: this soft prompt
  std::string soft_prompt;            // modes lora, full, moe: a frozen soft prompt (PEFT PROMPT_TUNING folder)
  int64_t prompt_tokens = 100;        // mode prompt: virtual tokens (ProMoT: 100)
  std::string prompt_init = "vocab";  // mode prompt: vocab (P random vocabulary tokens) or text
  std::string prompt_init_text;       // mode prompt with --prompt-init text: the instruction text
  std::vector<std::string> adapters;  // mode moe: the N >= 2 PEFT adapters that initialise the experts
  int64_t top_k = 2;                  // mode moe: experts kept per token
  double aux_loss_coef = 0.0;         // mode moe: Switch load-balancing loss coefficient
  bool routers_only = false;          // mode moe: train the routers, keep the experts fixed
  double expert_lr_scale = 1.0;       // mode moe: the experts train at lr × this, the routers at lr
  bool force = false;                 // retrain even if the output is complete; discard a checkpoint
  TrainingFlags training;
};
StageOutcome train_stage(const MpiWorld& world, const TrainOptions& options);

// `kmoe bank build`: one LoRA per dataset file (OUTPUT_DIR/<file stem>/, PEFT layout) and
// OUTPUT_DIR/bank.h5 listing them; ranks split the datasets, each finished adapter is
// committed and a re-run skips it. outputs: bank.h5, then the adapter folders.
struct BankBuildOptions {
  std::string model;              // base model: HF folder or .gguf (required)
  std::vector<std::string> data;  // JSONL files, one adapter each (required)
  std::string output_dir;         // the bank folder (required)
  bool force = false;             // retrain every adapter even if complete; discard checkpoints
  bool no_index = false;          // train the adapters but do not write bank.h5 (a job array's slice)
  TrainingFlags training;
};
StageOutcome bank_build_stage(const MpiWorld& world, const BankBuildOptions& options);

}  // namespace kmoe

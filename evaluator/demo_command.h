// `kmoe demo`: the embedded default and the README's first command (METHOD.md §1.5). It
// generates the task suite, makes a small base model and pretrains it, builds the LoRA bank,
// runs the pipeline (`kmoe run`) on every target task, trains and evaluates the baselines, and
// prints the paper's Table 1 in miniature. It holds no method code: every step is a
// subcommand run in-process (as `kmoe run` does), so every step skips when its artifact is
// complete, and a re-run after a kill resumes where it stopped.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "launcher/cli.h"

namespace kmoe {

// The sizes of one demo: the suite, the base model, every training and evaluation.
struct DemoProfile {
  std::string name;
  // suite
  int64_t samples_per_dataset = 0, kshot = 0, test = 0, pretrain_docs = 0;
  // base model (kmoe init-model) and its pretraining (kmoe train --mode full)
  int64_t hidden = 0, layers = 0, heads = 0, kv_heads = 0, intermediate = 0;
  int64_t pretrain_steps = 0, pretrain_batch = 0;
  double pretrain_lr = 0;
  int64_t max_len = 0;  // every training: a K-shot prompt + rationale + answer must fit
  // bank (one LoRA per open dataset)
  int64_t bank_steps = 0, bank_batch = 0, lora_r = 0;
  double bank_lr = 0;
  std::string lora_targets;
  // pipeline: select-experts, select-data, MoE training, and the K-shot LoRA baseline
  int64_t m = 0, n = 0, c = 0;
  double tau = 0;  // select-data's near-duplicate threshold: the suite's templated rows are close
  int64_t moe_epochs = 0, moe_batch = 0;
  double moe_lr = 0;
  int64_t kshot_lora_epochs = 0;
  double kshot_lora_lr = 0;
  int64_t max_new_tokens = 0;
  int64_t embed_block_rows = 0;
};

// "default" or "tiny" (the script test's, a few minutes); throws UsageError for other names.
DemoProfile demo_profile(const std::string& name);

// `table` gives the subcommands the steps run (the executable's table).
Subcommand demo_subcommand(std::function<std::vector<Subcommand>()> table);

}  // namespace kmoe

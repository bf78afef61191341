// `kmoe demo`: the embedded default and the README's first command (METHOD.md §1.5). It
// generates the task suite, makes a small base model and pretrains it, builds the LoRA bank,
// runs the pipeline (`kmoe run`) on every target task, trains and evaluates the baselines, and
// prints the paper's Table 1 in miniature. It holds no method code: every step is a stage
// function called in-process with its options struct (the pipeline through pipeline_run, as
// `kmoe run` does), so every step skips when its artifact is complete, and a re-run after a
// kill resumes where it stopped.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

// The sizes of one demo: the suite, the base model, every training and evaluation.
struct DemoProfile {
  std::string name;
  std::string pretrained_base;  // "smollm2": the base is that pretrained model (no init-model, no pretraining)
  // suite
  int64_t samples_per_dataset = 0, kshot = 0, test = 0, validation = 0, pretrain_docs = 0;
  int64_t draws = 1;  // K-shot draws per task, the default of --draws
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
  double tau = 0;  // select-data's near-duplicate threshold with the decoder's embeddings (rows are close)
  double tau_sentence_encoder = 0;  // ... with a sentence encoder (the paper's 0.9)
  int64_t moe_epochs = 0, moe_batch = 0;
  double moe_lr = 0;
  int64_t kshot_lora_epochs = 0;
  double kshot_lora_lr = 0;
  int64_t max_new_tokens = 0;
  int64_t embed_block_rows = 0;
};

// "default", "smollm2" or "tiny" (the script test's, seconds); throws UsageError for other names.
DemoProfile demo_profile(const std::string& name);

struct DemoOptions {
  std::string work_dir;           // absolute: every artifact, demo.md, demo_results.json, demo.png
  std::string work_dir_as_given;  // for the "Reproduce:" line
  std::vector<std::string> tasks{"mc", "yesno", "math", "string"};
  uint64_t seed = 0;                // suite, model, training and random-expert seed
  DemoProfile profile;              // demo_profile("default") on the command line
  int threads = 0;                  // CPU threads per rank (0: libtorch's default)
  int64_t draws = 1;                // K-shot draws per task (kshot.jsonl, kshot-1.jsonl, ...): RUN_DIR runs/TASK/drawD
  std::string base_model;           // a pretrained base (absolute); "" : the demo makes and pretrains one
  std::string encoder_model;        // Sim-Div's sentence-transformers folder; "" : the base decoder's embeddings
  std::set<int> tables{1};          // the paper's tables: 1 always; 2 (expert selection), 3 (data) on request
  std::string eval_split = "test";  // or "validation": every row evaluated there (tuning the profile)
  // --sizes: the profile's pipeline sizes this run overrides, canonical ("c=64_moe-epochs=5"), ""
  // for none. Such a run keeps its RUN_DIRs under WORK_DIR/runs_TAG and its tables in
  // demo[_validation]_TAG*, so that the profile's own runs stay as they are.
  std::string sizes_tag;
};

// Applies --sizes "KEY=VALUE,..." (keys c, n, m, tau, moe-epochs, moe-lr, kshot-lora-epochs,
// kshot-lora-lr) to `p` and returns the canonical tag (keys in that order, values as numbers
// print), "" for an empty spec. Throws UsageError for an unknown or repeated key or a value out
// of range.
std::string demo_sizes_apply(DemoProfile& p, const std::string& spec);

// Collective. Throws UsageError for an empty task list or a task the suite does not have.
StageOutcome demo_run(const MpiWorld& world, const DemoOptions& options);

}  // namespace kmoe

// `kmoe generate`: replies of a base model (HF folder or GGUF), optionally with a PEFT
// adapter, to prompts given on the command line. The quickest way to see that a model and
// an adapter load and behave.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "evaluator/panda.h"  // InsightFlags
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

// `kmoe generate`: the options as the user gives them; the defaults are the command line's.
// (Not `GenerateOptions`: that name is the sampler's, model/llama.h.)
struct GenerateStageOptions {
  std::string model;                 // HF model folder or .gguf file (required)
  std::string adapter;               // PEFT LoRA adapter folder ("": none)
  std::string soft_prompt;           // PEFT prompt-tuning folder put before each prompt ("": none)
  std::vector<std::string> prompts;  // the prompts, one reply each (required)
  bool raw = false;                  // do not wrap prompts in the model's chat template
  int max_new_tokens = 64;           // tokens to generate at most
  double temperature = 0.0;          // 0 = greedy
  double top_p = 1.0;                // nucleus sampling threshold
  int top_k = 0;                     // sample among the k most likely (0 = all)
  uint64_t seed = 0;                 // sampling seed
  std::string device = "auto";       // auto, cpu or cuda
  std::string dtype = "auto";        // auto, float32 or bfloat16 (runtime/compute_dtype.h)
  int threads = 0;                   // CPU threads (0: libtorch's default)
  InsightFlags insights;             // PANDA: each prompt is a question, the nearest pool rows go before it
};
// Collective (rank 0 generates and prints, the others return at once). Writes no artifact:
// the outcome is not skipped and has no outputs. Throws UsageError "kmoe generate: ...".
StageOutcome generate_stage(const MpiWorld& world, const GenerateStageOptions& options);

}  // namespace kmoe

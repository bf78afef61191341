// `kmoe init-model`: writes a random-initialised LLaMA-shaped HF folder with a byte-level
// tokenizer and a ChatML template (data/formats/model_init.h), the base model `kmoe demo` pretrains
// with `kmoe train --mode full`. It sits with the trainer because its only use is to be trained.
// The command line is in launcher/commands/trainer.cpp.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

struct InitModelOptions {
  std::string output;           // the model folder (required; written as DIR.partial, then renamed)
  int64_t hidden = 128;         // hidden size
  int64_t layers = 4;           // decoder layers
  int64_t heads = 4;            // attention heads
  int64_t kv_heads = 2;         // key/value heads (GQA)
  int64_t intermediate = 352;   // SwiGLU intermediate size
  int64_t max_position = 1024;  // max_position_embeddings
  double init_std = 0.02;       // standard deviation of the weights
  uint64_t seed = 0;            // PRNG seed; the same seed gives the same weights
  bool force = false;           // replace an existing folder made with other options
};
// Rank 0 writes; skipped when `output` already holds a folder made with the same options.
StageOutcome init_model_stage(const MpiWorld& world, const InitModelOptions& options);

}  // namespace kmoe

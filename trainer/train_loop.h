// The training loop, generic over what trains: a TrainTarget is a set of named trainable
// tensors plus the LinearHook the decoder calls (LoRA, MoE of LoRAs, or none when the base
// weights themselves train), with optional aux loss and statistics. One optimizer step
// takes G sequences (the global batch) in a seeded per-epoch order; the ranks split them
// (static_split) and each runs its share in micro-batches. Each rank's loss is its summed
// response-token cross-entropy divided by the response-token count of the whole global
// batch, so the gradient summed by GradientBuckets is the global mean's and np = 1 and
// np = 2 take the same step.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/store/artifact.h"
#include "data/text/sft_data.h"
#include "model/linear_hook.h"
#include "model/llama.h"
#include "trainer/checkpoint.h"
#include "trainer/communicator.h"
#include "trainer/optimizer.h"

namespace kmoe {

struct TrainTarget {
  // float32 leaves that require grad, on the communicator's device; names are stable
  // (they key the checkpoint).
  std::vector<std::pair<std::string, at::Tensor>> params;
  std::vector<double> lr_scales;  // optional: one per params entry, its factor on the lr (empty: all 1)
  const LinearHook* hook = nullptr;
  std::function<void(bool)> set_training;  // optional: dropout on/off
  // optional: token_source [batch, seq] int64, 0 = pad, s + 1 = a token of data file s
  std::function<void(const at::Tensor&)> before_forward;
  std::function<at::Tensor()> aux_loss;                      // optional: scalar added per micro-batch
  std::function<std::map<std::string, at::Tensor>()> state;  // optional: extra state to checkpoint
  std::function<void(const std::map<std::string, at::Tensor>&)> restore_state;
};

struct TrainLoopOptions {
  int64_t epochs = 3;
  int64_t max_steps = 0;  // > 0: exactly this many steps (the epochs repeat as needed)
  int64_t global_batch = 32;
  int64_t micro_batch = 4;
  double lr = 5e-5;
  double warmup_ratio = 0.0;
  int64_t warmup_steps = -1;  // >= 0: overrides warmup_ratio
  LrDecay lr_decay = LrDecay::cosine;
  std::string optimizer = "adamw";  // adamw | adafactor (optimizer_make)
  AdamWOptions adamw;               // adamw; its weight_decay is adafactor's too
  double max_grad_norm = 1.0;
  uint64_t seed = 42;
  int64_t checkpoint_every = 0;  // steps; 0: only on SIGTERM/SIGUSR1
  std::string checkpoint_path;   // OUTPUT.ckpt.h5
  int64_t log_every = 10;        // steps between metric lines on rank 0
  int64_t model_params = 0;      // the base's parameter count, for MFU on a GPU
};

struct TrainResult {
  bool interrupted = false;  // a signal stopped the run after a checkpoint: exit kExitCheckpointed
  int signal = 0;
  int64_t steps = 0;  // steps done (of total_steps)
  int64_t resumed_from = 0;
  TrainMetrics metrics;
};

int64_t train_steps_per_epoch(int64_t n_examples, int64_t global_batch);  // ceil(n / G)
int64_t train_total_steps(int64_t n_examples, const TrainLoopOptions& options);
// The order of the examples in `epoch`: a Fisher-Yates shuffle driven by a mt19937_64
// seeded from (seed, epoch). The same on every rank, platform and run.
std::vector<int64_t> train_epoch_order(int64_t n_examples, uint64_t seed, int64_t epoch);
// Which of a step's sequences (by their costs, e.g. FLOPs) rank `rank` of `size` trains on:
// costliest first, each to the rank with the least cost so far (lowest rank on ties), so
// ranks wait little for each other when lengths vary; returned in ascending order. A pure
// function of the costs: every rank computes the same partition.
std::vector<int64_t> train_rank_share(const std::vector<double>& costs, int rank, int size);
// Peak dense bf16 FLOP/s of a GPU by its name ("NVIDIA H100 80GB HBM3"), 0 when unknown.
double gpu_peak_bf16_flops(const std::string& device_name);

// Collective over comm. Resumes from options.checkpoint_path when it exists and was made by
// the same run (`provenance`: options and input hashes), refuses it naming the difference
// otherwise. On return without interruption the target's tensors hold the trained values
// and the checkpoint is left in place (the caller removes it after committing its output).
TrainResult train_run(const LlamaModel& model, TrainTarget& target, const std::vector<SftExample>& data,
                      const TrainLoopOptions& options, Communicator& comm, const Provenance& provenance);

}  // namespace kmoe

// Training checkpoints: one HDF5 file (OUTPUT.ckpt.h5) written through ArtifactWriter, so it
// appears under its final name only when complete and carries the run's provenance; a
// resume compares that provenance (options, input hashes) with the new run's and refuses a
// mismatch naming what differs. Everything a bit-identical resume needs is in it: trainable
// weights and AdamW moments (exact float32), the optimizer step, every rank's RNG state,
// the epoch's data order, the cursor (next step) and the metrics so far.
#pragma once

#include <ATen/core/Tensor.h>
#include <mpi.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/store/artifact.h"

namespace kmoe {

// Per optimizer step, kept on every rank (identical), written by rank 0.
struct TrainMetrics {
  std::vector<int64_t> step;  // 1-based: the step that just finished
  std::vector<float> loss, lr, grad_norm, tokens_per_s;
  void clear() { *this = TrainMetrics{}; }
};

struct Checkpoint {
  std::map<std::string, at::Tensor> weights;  // trainable tensors by name, float32 CPU
  std::map<std::string, at::Tensor> exp_avg, exp_avg_sq;
  int64_t optimizer_steps = 0;
  int64_t next_step = 0;  // the cursor: 0-based step to run next
  int64_t epoch = 0;      // epoch of `order`
  std::vector<int64_t> order;
  std::vector<at::Tensor> rng_cpu;   // per rank, uint8 state bytes
  std::vector<at::Tensor> rng_cuda;  // per rank, empty when trained on the CPU
  TrainMetrics metrics;
  std::map<std::string, at::Tensor> extra;  // state of what trains beyond its weights (MoE router load)
};

// Collective over comm: gathers this rank's RNG states (`rng_cpu`, `rng_cuda` with one
// element: this rank's; rng_cuda may be empty on every rank) to rank 0, which writes
// `path` atomically with `provenance`. Every other field is taken from rank 0.
void checkpoint_write(MPI_Comm comm, const std::string& path, const Provenance& provenance, const Checkpoint& ckpt);

// Serial; any rank. Throws naming the file and dataset when something is missing.
Checkpoint checkpoint_read(const std::string& path);

// Whether `path` is a checkpoint of the run described by `expected`: "" when it is (or
// when there is no file: check existence first), else the reason in words ("made with other
// options: lr 0.0001 -> 5e-05", "made from other inputs: 'data/0' differs").
std::string checkpoint_mismatch(const std::string& path, const Provenance& expected);

}  // namespace kmoe

// Gradient buckets for data parallelism, as DDP does them: the gradients of the trainable
// parameters are flattened into buckets of about `bucket_bytes` (parameters in reverse
// order, roughly the order backward produces their gradients), and each bucket is
// all-reduced (summed) as soon as backward has produced every gradient in it, so
// communication overlaps the rest of backward.
//
// Scaling is the caller's: each rank's loss is (sum of its token losses) / (token count of
// the whole global batch), so the summed gradient is the global mean's gradient and np = 1
// and np = 2 give the same step.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "trainer/communicator.h"

namespace kmoe {

struct GradientBucketsState;

class GradientBuckets {
 public:
  // Registers a gradient hook on every parameter (leaf tensors that require grad, all on
  // comm.device(), float32). `comm` must outlive this object.
  GradientBuckets(Communicator& comm, std::vector<at::Tensor> params, int64_t bucket_bytes = 25ll << 20);
  ~GradientBuckets();  // removes the hooks
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  // Gradient accumulation: before the backward of the last micro-batch of a step call
  // set_sync(true) (buckets are reduced as they fill, holding the gradient accumulated
  // over the step's micro-batches); before the other micro-batches set_sync(false)
  // (gradients only accumulate locally, nothing is sent). Default: true.
  void set_sync(bool sync);
  // After the synced backward: waits for every bucket and leaves each parameter's grad()
  // equal to the sum over ranks of its accumulated gradient. A parameter that got no
  // gradient on a rank contributes what it accumulated or zeros (so its grad() is defined
  // afterwards, zeros if no rank had one); every bucket is reduced on every rank, in
  // bucket order, so ranks never disagree on the number or order of collectives.
  // The grads are views of the bucket buffers (no copy); clear them (AdamW::zero_grad)
  // before the next step, or the reduced sum is summed over ranks again.
  void finish();

  int64_t bucket_count() const;
  int64_t bucket_elements(int64_t bucket) const;

 private:
  std::unique_ptr<GradientBucketsState> state_;
};

}  // namespace kmoe

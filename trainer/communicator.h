// Data-parallel collectives over the MPI world: MPI for CPU tensors, NCCL for CUDA tensors
// (the NCCL communicator of nccl_communicator.h: unique id over MPI_Bcast, the GPU of the
// node-local rank, its own stream). Collectives take element counts, never bytes. The
// same calls work at np = 1, where they are copies or no-ops.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>

#include "runtime/mpi_world.h"

namespace kmoe {

struct CommunicatorState;  // MPI requests / NCCL handles, kept out of this header

class Communicator {
 public:
  // Collective over world.comm. For a CUDA device this sets up NCCL and throws with the
  // reason when kmoe was built without NCCL or a rank has no GPU for its node-local rank.
  Communicator(const MpiWorld& world, c10::Device device);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int size() const;
  c10::Device device() const;
  const MpiWorld& world() const;

  // In-place sum over ranks of a contiguous float32, float64 or int64 tensor on device().
  // Blocking: the result is in `tensor` on return (on CUDA: for everything queued on
  // the default stream after the call).
  void allreduce_sum(at::Tensor& tensor);

  // A started in-place sum; wait() completes it (idempotent). Destroying an unwaited
  // Pending waits. On CUDA, wait() makes the default stream wait for the sum, so torch
  // kernels queued after it see the result; the host does not block.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
    // Whether the sum has completed, without blocking. MPI advances a non-blocking
    // collective only inside MPI calls, so calling this now and then lets it progress.
    virtual bool test() = 0;
  };
  // Starts an in-place sum of a contiguous float32 tensor on device() and returns at once
  // (MPI_Iallreduce on the CPU, ncclAllReduce on the communicator's stream on CUDA). The
  // tensor must stay alive and untouched until wait().
  std::unique_ptr<Pending> allreduce_sum_async(at::Tensor tensor);

  // True on every rank when `flag` is true on any rank (MPI). How ranks agree to stop
  // for a signal at a step boundary.
  bool any(bool flag);

 private:
  std::unique_ptr<CommunicatorState> state_;
};

}  // namespace kmoe

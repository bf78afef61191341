// NCCL communicator over the MPI world: the unique id is made on rank 0 and travels by
// MPI_Bcast, each rank takes the GPU of its node-local rank and gets its own stream.
// Collectives take element counts, never bytes. Compiled only when NCCL is found
// (KMOE_HAVE_NCCL); callers check gpu_probe() first.
#pragma once

#include <cstddef>
#include <memory>

#include "launcher/mpi_world.h"

namespace kmoe {

struct NcclState;  // ncclComm_t + cudaStream_t, kept out of this header

struct NcclCommunicator {
  std::shared_ptr<NcclState> state;  // shared_ptr: works with the incomplete type
  int device = -1;
  int rank = 0;
  int size = 1;
};

// Collective over world.comm. Throws with the CUDA/NCCL error text if this rank has no
// GPU for its node-local rank or NCCL fails to initialise.
NcclCommunicator nccl_communicator_init(const MpiWorld& world);
// In-place sum of `count` float32 elements in device memory, on the communicator's
// stream, then synchronised.
void nccl_communicator_allreduce_sum(NcclCommunicator& comm, float* device_data, size_t count);
void nccl_communicator_free(NcclCommunicator& comm);

}  // namespace kmoe

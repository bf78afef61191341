// NCCL communicator over the MPI world: the unique id is made on rank 0 and travels by
// MPI_Bcast, each rank takes the GPU of its node-local rank and gets its own stream.
// Torch's kernels run on the legacy default stream, so every collective first makes the
// NCCL stream wait for that stream (an event), and completion is another event that the
// default stream or the host waits on; nothing synchronises the device in between.
// Collectives take element counts, never bytes. Compiled only when NCCL is found
// (KMOE_HAVE_NCCL); callers check gpu_probe() first.
#pragma once

#include <cstddef>
#include <memory>

#include "runtime/mpi_world.h"

namespace kmoe {

struct NcclState;  // ncclComm_t + cudaStream_t, kept out of this header
struct NcclEvent;  // cudaEvent_t recorded after a started collective

struct NcclCommunicator {
  std::shared_ptr<NcclState> state;  // shared_ptr: works with the incomplete type
  int device = -1;
  int rank = 0;
  int size = 1;
};

enum class NcclDtype { float32, float64, int64 };

// Collective over world.comm. Throws with the CUDA/NCCL error text if this rank has no
// GPU for its node-local rank or NCCL fails to initialise.
NcclCommunicator nccl_communicator_init(const MpiWorld& world);
// In-place sum of `count` elements in device memory, after the work already queued on
// the default stream; returns when the sum is in `device_data`.
void nccl_communicator_allreduce_sum(NcclCommunicator& comm, void* device_data, size_t count, NcclDtype dtype);
// Starts the same sum and returns at once; the returned event completes it.
std::shared_ptr<NcclEvent> nccl_communicator_allreduce_sum_async(NcclCommunicator& comm, void* device_data,
                                                                 size_t count, NcclDtype dtype);
// Makes the default stream wait for the collective (later torch kernels see the sum);
// the host does not block.
void nccl_event_wait_on_default_stream(NcclEvent& event);
// Blocks the host until the collective has completed.
void nccl_event_synchronize(NcclEvent& event);
// Whether the collective has completed, without blocking.
bool nccl_event_query(NcclEvent& event);
void nccl_communicator_free(NcclCommunicator& comm);

}  // namespace kmoe

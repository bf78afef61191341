// See nccl_communicator.h.
#include "trainer/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <stdexcept>
#include <string>

namespace kmoe {

struct NcclState {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
};

struct NcclEvent {
  cudaEvent_t done = nullptr;
  int device = -1;
  ~NcclEvent() {
    if (done) cudaEventDestroy(done);  // deferred by CUDA until the event has completed
  }
};

namespace {
void cuda_check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(rc));
}
void nccl_check(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) throw std::runtime_error(std::string(what) + ": " + ncclGetErrorString(rc));
}

ncclDataType_t nccl_dtype(NcclDtype dtype) {
  switch (dtype) {
    case NcclDtype::float32:
      return ncclFloat32;
    case NcclDtype::float64:
      return ncclFloat64;
    case NcclDtype::int64:
      return ncclInt64;
  }
  throw std::invalid_argument("nccl_dtype: unknown dtype");
}

// Runs with `device` current and puts the caller's current device back, so torch's own
// idea of the current device is left alone.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    cuda_check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) cuda_check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};
}  // namespace

NcclCommunicator nccl_communicator_init(const MpiWorld& world) {
  NcclCommunicator c;
  c.rank = world.rank;
  c.size = world.size;
  int devices = 0;
  // Every rank must reach the MPI_Bcast below even when its own GPU is missing, so the
  // device check is agreed on first.
  const bool have_device = cudaGetDeviceCount(&devices) == cudaSuccess && world.local_rank < devices;
  int all_have = have_device ? 1 : 0;
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, &all_have, 1, MPI_INT, MPI_MIN, world.comm), "MPI_Allreduce(have GPU)");
  if (!have_device) {
    throw std::runtime_error("rank " + std::to_string(world.rank) + " has node-local rank " +
                             std::to_string(world.local_rank) + " but sees " + std::to_string(devices) +
                             " CUDA device(s)");
  }
  if (!all_have) throw std::runtime_error("another rank has no CUDA device for its node-local rank");
  c.device = world.local_rank;
  DeviceGuard guard(c.device);
  ncclUniqueId id;
  if (world.is_root()) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  mpi_check(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, world.comm), "MPI_Bcast(ncclUniqueId)");
  c.state = std::make_shared<NcclState>();
  cuda_check(cudaStreamCreateWithFlags(&c.state->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  nccl_check(ncclCommInitRank(&c.state->comm, world.size, id, world.rank), "ncclCommInitRank");
  return c;
}

std::shared_ptr<NcclEvent> nccl_communicator_allreduce_sum_async(NcclCommunicator& c, void* device_data, size_t count,
                                                                 NcclDtype dtype) {
  if (!c.state) throw std::logic_error("nccl_communicator_allreduce_sum_async: communicator is not initialised");
  DeviceGuard guard(c.device);
  // The NCCL stream is non-blocking, so it must be told to wait for the kernels that
  // produced `device_data` on the default stream.
  cudaEvent_t ready = nullptr;
  cuda_check(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate");
  const cudaError_t recorded = cudaEventRecord(ready, cudaStreamLegacy);
  const cudaError_t waited = recorded == cudaSuccess ? cudaStreamWaitEvent(c.state->stream, ready, 0) : recorded;
  cudaEventDestroy(ready);
  cuda_check(waited, "cudaEventRecord/cudaStreamWaitEvent(default stream)");
  nccl_check(ncclAllReduce(device_data, device_data, count, nccl_dtype(dtype), ncclSum, c.state->comm, c.state->stream),
             "ncclAllReduce");
  auto event = std::make_shared<NcclEvent>();
  event->device = c.device;
  cuda_check(cudaEventCreateWithFlags(&event->done, cudaEventDisableTiming), "cudaEventCreate");
  cuda_check(cudaEventRecord(event->done, c.state->stream), "cudaEventRecord(NCCL stream)");
  return event;
}

void nccl_communicator_allreduce_sum(NcclCommunicator& c, void* device_data, size_t count, NcclDtype dtype) {
  auto event = nccl_communicator_allreduce_sum_async(c, device_data, count, dtype);
  nccl_event_wait_on_default_stream(*event);
  nccl_event_synchronize(*event);
}

void nccl_event_wait_on_default_stream(NcclEvent& event) {
  DeviceGuard guard(event.device);
  cuda_check(cudaStreamWaitEvent(cudaStreamLegacy, event.done, 0), "cudaStreamWaitEvent(default stream)");
}

void nccl_event_synchronize(NcclEvent& event) {
  cuda_check(cudaEventSynchronize(event.done), "cudaEventSynchronize");
}

bool nccl_event_query(NcclEvent& event) {
  const cudaError_t rc = cudaEventQuery(event.done);
  if (rc == cudaErrorNotReady) return false;
  cuda_check(rc, "cudaEventQuery");
  return true;
}

void nccl_communicator_free(NcclCommunicator& c) {
  if (!c.state) return;
  if (c.state->comm) ncclCommDestroy(c.state->comm);
  if (c.state->stream) cudaStreamDestroy(c.state->stream);
  c.state.reset();
}

}  // namespace kmoe

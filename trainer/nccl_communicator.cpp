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

namespace {
void cuda_check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(rc));
}
void nccl_check(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) throw std::runtime_error(std::string(what) + ": " + ncclGetErrorString(rc));
}
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
  MPI_Allreduce(MPI_IN_PLACE, &all_have, 1, MPI_INT, MPI_MIN, world.comm);
  if (!have_device) {
    throw std::runtime_error("rank " + std::to_string(world.rank) + " has node-local rank " +
                             std::to_string(world.local_rank) + " but sees " + std::to_string(devices) +
                             " CUDA device(s)");
  }
  if (!all_have) throw std::runtime_error("another rank has no CUDA device for its node-local rank");
  c.device = world.local_rank;
  cuda_check(cudaSetDevice(c.device), "cudaSetDevice");
  ncclUniqueId id;
  if (world.is_root()) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  mpi_check(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, world.comm), "MPI_Bcast(ncclUniqueId)");
  c.state = std::make_shared<NcclState>();
  cuda_check(cudaStreamCreateWithFlags(&c.state->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  nccl_check(ncclCommInitRank(&c.state->comm, world.size, id, world.rank), "ncclCommInitRank");
  return c;
}

void nccl_communicator_allreduce_sum(NcclCommunicator& c, float* device_data, size_t count) {
  nccl_check(ncclAllReduce(device_data, device_data, count, ncclFloat32, ncclSum, c.state->comm, c.state->stream),
             "ncclAllReduce");
  cuda_check(cudaStreamSynchronize(c.state->stream), "cudaStreamSynchronize");
}

void nccl_communicator_free(NcclCommunicator& c) {
  if (!c.state) return;
  if (c.state->comm) ncclCommDestroy(c.state->comm);
  if (c.state->stream) cudaStreamDestroy(c.state->stream);
  c.state.reset();
}

}  // namespace kmoe

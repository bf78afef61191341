// See communicator.h. CPU tensors go through MPI on world.comm; CUDA tensors through
// NCCL (nccl_communicator.cpp), which is the only CUDA code, so this file builds against
// a CPU-only libtorch and needs no c10/cuda headers.
#include "trainer/communicator.h"

#include <ATen/core/Tensor.h>

#include <limits>
#include <stdexcept>
#include <string>

#ifdef KMOE_HAVE_NCCL
#include "trainer/nccl_communicator.h"
#endif

namespace kmoe {

struct CommunicatorState {
  const MpiWorld* world = nullptr;
  c10::Device device = c10::Device(c10::kCPU);
#ifdef KMOE_HAVE_NCCL
  NcclCommunicator nccl;
#endif
};

namespace {

MPI_Datatype mpi_dtype(c10::ScalarType type) {
  switch (type) {
    case c10::kFloat:
      return MPI_FLOAT;
    case c10::kDouble:
      return MPI_DOUBLE;
    case c10::kLong:
      return MPI_INT64_T;
    default:
      throw std::invalid_argument(std::string("Communicator: cannot sum a tensor of dtype ") + c10::toString(type) +
                                  "; only float32, float64 and int64");
  }
}

// MPI counts are int; a tensor past that is refused rather than silently truncated
// (buckets are ~25 MB, far below it).
int mpi_count(const at::Tensor& tensor, const char* what) {
  if (tensor.numel() > std::numeric_limits<int>::max()) {
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(tensor.numel()) +
                                " elements are more than one MPI call can sum; split the tensor");
  }
  return static_cast<int>(tensor.numel());
}

void check_tensor(const at::Tensor& tensor, c10::Device device, const char* what) {
  if (!tensor.defined()) throw std::invalid_argument(std::string(what) + ": the tensor is undefined");
  if (tensor.device() != device) {
    throw std::invalid_argument(std::string(what) + ": the tensor is on " + tensor.device().str() +
                                " but the communicator is on " + device.str());
  }
  if (!tensor.is_contiguous()) throw std::invalid_argument(std::string(what) + ": the tensor is not contiguous");
  mpi_dtype(tensor.scalar_type());
}

class MpiPending final : public Communicator::Pending {
 public:
  MpiPending(at::Tensor tensor, MPI_Comm comm) : tensor_(std::move(tensor)) {
    mpi_check(MPI_Iallreduce(MPI_IN_PLACE, tensor_.data_ptr(), mpi_count(tensor_, "Communicator::allreduce_sum_async"),
                             mpi_dtype(tensor_.scalar_type()), MPI_SUM, comm, &request_),
              "MPI_Iallreduce");
  }
  ~MpiPending() override {
    // A destructor must not throw; a failed wait here has already lost the sum.
    if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }
  void wait() override {
    if (request_ != MPI_REQUEST_NULL) mpi_check(MPI_Wait(&request_, MPI_STATUS_IGNORE), "MPI_Wait(MPI_Iallreduce)");
  }
  bool test() override {
    if (request_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    mpi_check(MPI_Test(&request_, &done, MPI_STATUS_IGNORE), "MPI_Test(MPI_Iallreduce)");
    return done != 0;
  }

 private:
  at::Tensor tensor_;  // kept alive until the sum is done
  MPI_Request request_ = MPI_REQUEST_NULL;
};

#ifdef KMOE_HAVE_NCCL
NcclDtype nccl_dtype(c10::ScalarType type) {
  switch (type) {
    case c10::kFloat:
      return NcclDtype::float32;
    case c10::kDouble:
      return NcclDtype::float64;
    default:
      return NcclDtype::int64;  // check_tensor allows nothing else
  }
}

class NcclPending final : public Communicator::Pending {
 public:
  NcclPending(at::Tensor tensor, NcclCommunicator& comm) : tensor_(std::move(tensor)) {
    event_ = nccl_communicator_allreduce_sum_async(comm, tensor_.data_ptr(), static_cast<size_t>(tensor_.numel()),
                                                   nccl_dtype(tensor_.scalar_type()));
  }
  ~NcclPending() override {
    try {
      wait();
    } catch (...) {
    }
  }
  // The default stream waits for the sum, so torch kernels queued after wait() see it;
  // the host does not block (the caching allocator may then reuse the memory safely too).
  void wait() override {
    if (!event_) return;
    nccl_event_wait_on_default_stream(*event_);
    event_.reset();
    tensor_ = at::Tensor();
  }
  bool test() override { return !event_ || nccl_event_query(*event_); }

 private:
  at::Tensor tensor_;
  std::shared_ptr<NcclEvent> event_;
};
#endif

}  // namespace

Communicator::Communicator(const MpiWorld& world, c10::Device device) : state_(std::make_unique<CommunicatorState>()) {
  state_->world = &world;
  state_->device = device;
  if (device.is_cpu()) return;
  if (!device.is_cuda()) {
    throw std::invalid_argument("Communicator: device " + device.str() + " is neither the CPU nor a CUDA GPU");
  }
#ifdef KMOE_HAVE_NCCL
  state_->nccl = nccl_communicator_init(world);
  if (device.has_index() && device.index() != state_->nccl.device) {
    const int nccl_device = state_->nccl.device;
    nccl_communicator_free(state_->nccl);
    throw std::invalid_argument("Communicator: rank " + std::to_string(world.rank) + " was given " + device.str() +
                                " but its node-local rank takes cuda:" + std::to_string(nccl_device));
  }
  state_->device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(state_->nccl.device));
#else
  throw std::runtime_error("Communicator: device " + device.str() +
                           " needs NCCL, and this kmoe was built without it (no CUDA toolkit/NCCL found at "
                           "configure time); train on the CPU or rebuild with NCCL");
#endif
}

Communicator::~Communicator() {
#ifdef KMOE_HAVE_NCCL
  nccl_communicator_free(state_->nccl);
#endif
}

int Communicator::rank() const {
  return state_->world->rank;
}
int Communicator::size() const {
  return state_->world->size;
}
c10::Device Communicator::device() const {
  return state_->device;
}
const MpiWorld& Communicator::world() const {
  return *state_->world;
}

void Communicator::allreduce_sum(at::Tensor& tensor) {
  check_tensor(tensor, state_->device, "Communicator::allreduce_sum");
  if (tensor.numel() == 0) return;
#ifdef KMOE_HAVE_NCCL
  if (state_->device.is_cuda()) {
    nccl_communicator_allreduce_sum(state_->nccl, tensor.data_ptr(), static_cast<size_t>(tensor.numel()),
                                    nccl_dtype(tensor.scalar_type()));
    return;
  }
#endif
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, tensor.data_ptr(), mpi_count(tensor, "Communicator::allreduce_sum"),
                          mpi_dtype(tensor.scalar_type()), MPI_SUM, state_->world->comm),
            "MPI_Allreduce(sum)");
}

std::unique_ptr<Communicator::Pending> Communicator::allreduce_sum_async(at::Tensor tensor) {
  check_tensor(tensor, state_->device, "Communicator::allreduce_sum_async");
  if (tensor.scalar_type() != c10::kFloat) {
    throw std::invalid_argument(std::string("Communicator::allreduce_sum_async: the tensor is ") +
                                c10::toString(tensor.scalar_type()) + ", not float32");
  }
#ifdef KMOE_HAVE_NCCL
  if (state_->device.is_cuda()) return std::make_unique<NcclPending>(std::move(tensor), state_->nccl);
#endif
  return std::make_unique<MpiPending>(std::move(tensor), state_->world->comm);
}

bool Communicator::any(bool flag) {
  int value = flag ? 1 : 0;
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_LOR, state_->world->comm), "MPI_Allreduce(any)");
  return value != 0;
}

}  // namespace kmoe

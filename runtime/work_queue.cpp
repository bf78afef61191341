// See work_queue.h. The server polls with MPI_Test and a short sleep instead of blocking
// in MPI_Recv: a blocking receive spins a core in Open MPI, which rank 0 needs for work,
// and polling lets the destructor stop the server when rank 0 unwinds after an error.
#include "runtime/work_queue.h"

#include <chrono>
#include <stdexcept>

namespace kmoe {

namespace {
constexpr int kTagRequest = 1;
constexpr int kTagReply = 2;
}  // namespace

WorkQueue::WorkQueue(const MpiWorld& world, int64_t n_units) : rank_(world.rank), size_(world.size), n_units_(n_units) {
  if (n_units < 0) throw std::invalid_argument("WorkQueue: negative unit count");
  mpi_check(MPI_Comm_dup(world.comm, &comm_), "MPI_Comm_dup (work queue)");
  rank0_works_ = size_ == 1 || world.thread_level >= MPI_THREAD_MULTIPLE;
  if (rank_ == 0 && size_ > 1 && rank0_works_) server_ = std::thread([this] { serve(); });
}

WorkQueue::~WorkQueue() {
  if (server_.joinable()) {
    // Normal end: every other rank has been told "no more" and the server ends by itself.
    // Unwinding after an error: stop it so the error reaches main() and MPI_Abort.
    if (std::uncaught_exceptions() > 0) stop_ = true;
    server_.join();
  }
  if (comm_ != MPI_COMM_NULL && std::uncaught_exceptions() == 0) MPI_Comm_free(&comm_);
}

void WorkQueue::serve() {
  int finished = 0;  // ranks that were told there is no more work
  auto pause = std::chrono::microseconds(20);
  while (finished < size_ - 1 && !stop_) {
    int dummy = 0;
    MPI_Request req;
    MPI_Irecv(&dummy, 1, MPI_INT, MPI_ANY_SOURCE, kTagRequest, comm_, &req);
    MPI_Status status;
    int done = 0;
    while (!done) {
      MPI_Test(&req, &done, &status);
      if (done) break;
      if (stop_) {
        MPI_Cancel(&req);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        return;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(1000));
    }
    pause = std::chrono::microseconds(20);
    int64_t unit = counter_.fetch_add(1);
    if (unit >= n_units_) {
      unit = -1;
      ++finished;
    }
    MPI_Send(&unit, 1, MPI_INT64_T, status.MPI_SOURCE, kTagReply, comm_);
  }
}

std::optional<int64_t> WorkQueue::next() {
  if (exhausted_) return std::nullopt;
  if (rank_ == 0) {
    if (!rank0_works_) {  // no thread support: rank 0 serves everybody, then is done
      serve();
      exhausted_ = true;
      return std::nullopt;
    }
    const int64_t unit = counter_.fetch_add(1);
    if (unit < n_units_) return unit;
    exhausted_ = true;
    return std::nullopt;
  }
  int dummy = 0;
  int64_t unit = -1;
  mpi_check(MPI_Send(&dummy, 1, MPI_INT, 0, kTagRequest, comm_), "work queue request");
  mpi_check(MPI_Recv(&unit, 1, MPI_INT64_T, 0, kTagReply, comm_, MPI_STATUS_IGNORE), "work queue reply");
  if (unit < 0) {
    exhausted_ = true;
    return std::nullopt;
  }
  return unit;
}

}  // namespace kmoe

// Rank-0 dynamic work queue: hands out unit indices 0..n-1, each exactly once across all
// ranks, to whichever rank asks first. Rank 0 also does work: a server thread on rank 0
// answers the other ranks (MPI_THREAD_MULTIPLE) while rank 0's main thread draws from the
// same atomic counter. Without MPI_THREAD_MULTIPLE rank 0 only serves. Units should be
// coarse (an adapter × a chunk of examples): one request costs a message round trip.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>

#include "runtime/mpi_world.h"

namespace kmoe {

class WorkQueue {
 public:
  // Collective over world.comm. n_units may be 0.
  WorkQueue(const MpiWorld& world, int64_t n_units);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // The next unit for this rank, or nullopt when all units are handed out.
  std::optional<int64_t> next();
  // Units handed out so far (meaningful on rank 0 only).
  int64_t handed_out() const { return std::min<int64_t>(counter_.load(), n_units_); }
  int64_t size() const { return n_units_; }

 private:
  void serve();  // rank 0: answer requests until every other rank was told "no more"

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  int64_t n_units_ = 0;
  bool rank0_works_ = true;
  bool exhausted_ = false;
  std::atomic<int64_t> counter_{0};
  std::atomic<bool> stop_{false};
  std::thread server_;
};

}  // namespace kmoe

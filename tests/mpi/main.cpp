// MPI tests: every rank runs every test. Rank 0 prints GoogleTest's usual output; the
// other ranks print only their failures, prefixed with the rank. Any failing rank exits
// non-zero, so mpirun (and CTest) fail.
#include <gtest/gtest.h>

#include <iostream>

#include "runtime/mpi_world.h"

namespace {
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed()) {
      std::cerr << "[rank " << rank_ << "] " << (r.file_name() ? r.file_name() : "?") << ":" << r.line_number() << ": "
                << r.summary() << std::endl;
    }
  }

 private:
  int rank_;
};
}  // namespace

int main(int argc, char** argv) {
  auto& world = kmoe::mpi_world_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (world.rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(world.rank));
  }
  int rc = RUN_ALL_TESTS();
  MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, world.comm);
  kmoe::mpi_world_finalize();
  return rc;
}

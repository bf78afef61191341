#include <gtest/gtest.h>

#include <cstdlib>

#include "runtime/mpi_world.h"

namespace kmoe {
namespace {

TEST(MpiWorldMpi, RanksAndNodeLayoutAgreeWithMpi) {
  const MpiWorld& w = mpi_world();
  int size = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  EXPECT_EQ(w.size, size);
  EXPECT_EQ(w.rank, rank);
  // All ranks of a test run on this one machine.
  EXPECT_EQ(w.node_count, 1);
  EXPECT_EQ(w.local_size, size);
  EXPECT_EQ(w.local_rank, rank);
  ASSERT_EQ(w.ranks_per_node.size(), 1u);
  EXPECT_EQ(w.ranks_per_node[0], size);
  // Open MPI's own idea of the node-local rank must match ours.
  if (const char* lr = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK")) {
    EXPECT_EQ(std::atoi(lr), w.local_rank);
  }
}

}  // namespace
}  // namespace kmoe

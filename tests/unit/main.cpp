// Unit tests run as one MPI process (singleton init): the artifact store and the stage
// runner need MPI even with one rank.
#include <gtest/gtest.h>

#include "runtime/mpi_world.h"

int main(int argc, char** argv) {
  kmoe::mpi_world_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  kmoe::mpi_world_finalize();
  return rc;
}

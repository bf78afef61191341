// Parity tests' main. The paths the tests need are compiled in as defaults and exported
// before the tests run: CTest's gtest_discover_tests passes only the first entry of an
// ENVIRONMENT list (CMake 3.25), and running the binary by hand should work too. Values
// already in the environment win.
#include <gtest/gtest.h>

#include <cstdlib>

#include "runtime/mpi_world.h"

int main(int argc, char** argv) {
  setenv("KMOE_PARITY_DIR", KMOE_DEFAULT_PARITY_DIR, 0);
  setenv("KMOE_MODELS_DIR", KMOE_DEFAULT_MODELS_DIR, 0);
  setenv("KMOE_REF_PYTHON", KMOE_DEFAULT_REF_PYTHON, 0);
  setenv("HF_HUB_OFFLINE", "1", 0);
  setenv("TRANSFORMERS_OFFLINE", "1", 0);
  kmoe::mpi_world_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  kmoe::mpi_world_finalize();
  return rc;
}

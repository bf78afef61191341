#include "runtime/mpi_world.h"

#include <gtest/gtest.h>

namespace kmoe {
namespace {

TEST(StaticSplit, CoversEveryItemOnceWithBalancedBlocks) {
  for (int64_t n : {0, 1, 2, 7, 10, 11, 1000}) {
    for (int size : {1, 2, 3, 4, 7}) {
      int64_t next = 0, smallest = n, largest = 0;
      for (int r = 0; r < size; ++r) {
        const Range b = static_split(n, r, size);
        EXPECT_EQ(b.begin, next) << "n=" << n << " size=" << size << " rank=" << r;
        next = b.end;
        smallest = std::min(smallest, b.size());
        largest = std::max(largest, b.size());
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(largest - smallest, 1);
    }
  }
  EXPECT_THROW(static_split(5, 3, 3), std::invalid_argument);
}

TEST(MpiWorld, SingleProcessWorld) {
  const MpiWorld& w = mpi_world();
  EXPECT_EQ(w.size, 1);
  EXPECT_EQ(w.rank, 0);
  EXPECT_EQ(w.local_rank, 0);
  EXPECT_EQ(w.node_count, 1);
  ASSERT_EQ(w.host_names.size(), 1u);
  EXPECT_FALSE(w.host_names[0].empty());
}

}  // namespace
}  // namespace kmoe

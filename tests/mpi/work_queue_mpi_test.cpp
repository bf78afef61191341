#include "runtime/work_queue.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace kmoe {
namespace {

// Gathers every rank's units on every rank.
std::vector<int64_t> gather_units(const MpiWorld& w, const std::vector<int64_t>& mine) {
  int n = static_cast<int>(mine.size());
  std::vector<int> counts(w.size), displs(w.size);
  MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, w.comm);
  int total = 0;
  for (int r = 0; r < w.size; ++r) {
    displs[r] = total;
    total += counts[r];
  }
  std::vector<int64_t> all(total);
  MPI_Allgatherv(mine.data(), n, MPI_INT64_T, all.data(), counts.data(), displs.data(), MPI_INT64_T, w.comm);
  return all;
}

void expect_each_unit_once(const std::vector<int64_t>& all, int64_t n) {
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (int64_t u : all) {
    ASSERT_GE(u, 0);
    ASSERT_LT(u, n);
    seen[u]++;
  }
  for (int64_t u = 0; u < n; ++u) EXPECT_EQ(seen[u], 1) << "unit " << u;
}

TEST(WorkQueueMpi, HandsEveryUnitOutExactlyOnce) {
  const MpiWorld& w = mpi_world();
  for (int64_t n : {0, 1, 2, 5, 257}) {
    std::vector<int64_t> mine;
    {
      WorkQueue q(w, n);
      while (auto u = q.next()) mine.push_back(*u);
      EXPECT_FALSE(q.next().has_value()) << "stays exhausted";
    }
    expect_each_unit_once(gather_units(w, mine), n);
  }
}

TEST(WorkQueueMpi, SlowRanksGetFewerUnitsAndRankZeroWorks) {
  const MpiWorld& w = mpi_world();
  const int64_t n = 60;
  std::vector<int64_t> mine;
  {
    WorkQueue q(w, n);
    while (auto u = q.next()) {
      mine.push_back(*u);
      // The last rank is ten times slower than the others.
      std::this_thread::sleep_for(std::chrono::milliseconds(w.rank == w.size - 1 ? 20 : 2));
    }
  }
  const auto all = gather_units(w, mine);
  expect_each_unit_once(all, n);
  int my_count = static_cast<int>(mine.size());
  std::vector<int> counts(w.size);
  MPI_Allgather(&my_count, 1, MPI_INT, counts.data(), 1, MPI_INT, w.comm);
  if (w.thread_level >= MPI_THREAD_MULTIPLE) {
    EXPECT_GT(counts[0], 0) << "rank 0 also does work";
  }
  EXPECT_LT(counts[w.size - 1], counts[w.size - 2]) << "the slow rank took fewer units";
}

}  // namespace
}  // namespace kmoe

#include "trainer/train_loop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

namespace kmoe {
namespace {

TEST(TrainLoop, EpochOrderIsASeededPermutation) {
  const auto a = train_epoch_order(50, 7, 0);
  EXPECT_EQ(a, train_epoch_order(50, 7, 0));
  EXPECT_NE(a, train_epoch_order(50, 7, 1));
  EXPECT_NE(a, train_epoch_order(50, 8, 0));
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(sorted[i], i);
  TrainLoopOptions o;
  o.global_batch = 8;
  o.epochs = 3;
  EXPECT_EQ(train_total_steps(50, o), 21);  // ceil(50 / 8) per epoch
  o.max_steps = 5;
  EXPECT_EQ(train_total_steps(50, o), 5);
  EXPECT_EQ(gpu_peak_bf16_flops("NVIDIA H100 80GB HBM3"), 989e12);
  EXPECT_EQ(gpu_peak_bf16_flops("NVIDIA H100 PCIe"), 756e12);
  EXPECT_EQ(gpu_peak_bf16_flops("some CPU"), 0);
}

TEST(TrainLoop, RankSharesPartitionTheStepAndBalanceTokens) {
  const std::vector<double> lengths = {870, 20, 300, 310, 45, 600, 120, 90};
  for (const int size : {1, 2, 3}) {
    std::vector<int64_t> all;
    std::vector<double> tokens;
    for (int r = 0; r < size; ++r) {
      const auto mine = train_rank_share(lengths, r, size);
      EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
      double t = 0;
      for (const int64_t i : mine) t += lengths[i];
      tokens.push_back(t);
      all.insert(all.end(), mine.begin(), mine.end());
    }
    std::sort(all.begin(), all.end());
    ASSERT_EQ(all.size(), lengths.size()) << size;
    for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], static_cast<int64_t>(i));
    if (size == 2) {  // 2355 tokens: the split of the first half by index would be 1500 / 855
      EXPECT_LE(std::abs(tokens[0] - tokens[1]), 100.0) << tokens[0] << " vs " << tokens[1];
    }
  }
  EXPECT_TRUE(train_rank_share({5.0, 6.0}, 3, 4).empty());
}

}  // namespace
}  // namespace kmoe

#include "trainer/train_loop.h"

#include <gtest/gtest.h>

#include <algorithm>

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

}  // namespace
}  // namespace kmoe

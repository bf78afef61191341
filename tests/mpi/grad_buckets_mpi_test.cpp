// GradientBuckets under MPI: every rank computes a different loss (its own inputs, and a
// parameter only some ranks use); after finish() every rank's grads must equal the sum of
// all ranks' grads. The expected values come from gathering every rank's inputs with MPI
// and redoing each rank's backward locally on plain copies of the parameters.
#include "trainer/grad_buckets.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/mpi_world.h"

namespace kmoe {
namespace {

constexpr int64_t kBatch = 4, kIn = 5, kHidden = 6, kOut = 3;

// W1 [6,5], b1 [6], W2 [3,6], b2 [3], extra [4]: the same values on every rank.
std::vector<torch::Tensor> make_params() {
  torch::manual_seed(1234);
  return {torch::randn({kHidden, kIn}).requires_grad_(), torch::randn({kHidden}).requires_grad_(),
          torch::randn({kOut, kHidden}).requires_grad_(), torch::randn({kOut}).requires_grad_(),
          torch::randn({4}).requires_grad_()};
}

std::vector<torch::Tensor> plain_copies(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone().requires_grad_());
  return out;
}

// x [batch, in]. `extra` decides whether the last parameter takes part.
torch::Tensor loss_of(const std::vector<torch::Tensor>& p, const torch::Tensor& x, bool extra) {
  const torch::Tensor h = torch::tanh(torch::matmul(x, p[0].t()) + p[1]);
  const torch::Tensor y = torch::matmul(h, p[2].t()) + p[3];
  torch::Tensor loss = y.pow(2).mean();
  if (extra) loss = loss + (p[4] * x.sum()).sum().pow(2);
  return loss;
}

// Each rank's input of micro-batch `micro`, gathered: [size, batch, in].
torch::Tensor gathered_inputs(int micro) {
  const MpiWorld& w = mpi_world();
  torch::manual_seed(100 * w.rank + micro + 1);
  const torch::Tensor mine = torch::randn({kBatch, kIn});
  torch::Tensor all = torch::empty({w.size, kBatch, kIn});
  mpi_check(MPI_Allgather(mine.data_ptr<float>(), kBatch * kIn, MPI_FLOAT, all.data_ptr<float>(), kBatch * kIn,
                          MPI_FLOAT, w.comm),
            "MPI_Allgather");
  return all;
}

// The sum over ranks and micro-batches of each rank's gradient, computed locally.
// uses_extra(rank, micro) says whether that rank's loss used the last parameter.
template <class UsesExtra>
std::vector<torch::Tensor> expected_sum(const std::vector<torch::Tensor>& params,
                                        const std::vector<torch::Tensor>& inputs, UsesExtra uses_extra) {
  std::vector<torch::Tensor> sum;
  for (const auto& p : params) sum.push_back(torch::zeros_like(p));
  for (size_t micro = 0; micro < inputs.size(); ++micro) {
    for (int r = 0; r < mpi_world().size; ++r) {
      auto copy = plain_copies(params);
      loss_of(copy, inputs[micro][r], uses_extra(r, static_cast<int>(micro))).backward();
      for (size_t i = 0; i < copy.size(); ++i) {
        if (copy[i].grad().defined()) sum[i] += copy[i].grad();
      }
    }
  }
  return sum;
}

void expect_grads(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& expected) {
  for (size_t i = 0; i < params.size(); ++i) {
    ASSERT_TRUE(params[i].grad().defined()) << "parameter " << i;
    const double scale = std::max(1.0, expected[i].abs().max().item<double>());
    EXPECT_LT((params[i].grad() - expected[i]).abs().max().item<double>(), 1e-5 * scale) << "parameter " << i;
  }
}

TEST(GradientBucketsMpi, BucketCountFollowsBucketBytesInReverseParameterOrder) {
  Communicator comm(mpi_world(), torch::kCPU);
  std::vector<torch::Tensor> params;
  for (int64_t n : {10, 20, 30, 40}) params.push_back(torch::zeros({n}).requires_grad_());
  // 100 bytes = 25 floats; reversed: [40] closes, [30] closes, [20, 10] closes at 30.
  GradientBuckets small(comm, params, 100);
  ASSERT_EQ(small.bucket_count(), 3);
  EXPECT_EQ(small.bucket_elements(0), 40);
  EXPECT_EQ(small.bucket_elements(1), 30);
  EXPECT_EQ(small.bucket_elements(2), 30);
  EXPECT_THROW(small.bucket_elements(3), std::out_of_range);
  GradientBuckets one_each(comm, params, 4);
  EXPECT_EQ(one_each.bucket_count(), 4);
  GradientBuckets default_size(comm, params);
  ASSERT_EQ(default_size.bucket_count(), 1);
  EXPECT_EQ(default_size.bucket_elements(0), 100);
}

TEST(GradientBucketsMpi, EveryRankEndsWithTheSumOfAllRanksGradients) {
  Communicator comm(mpi_world(), torch::kCPU);
  auto params = make_params();
  // 20 bytes = 5 floats: buckets [extra, b2] [W2] [b1] [W1].
  GradientBuckets buckets(comm, params, 20);
  ASSERT_EQ(buckets.bucket_count(), 4);
  EXPECT_EQ(buckets.bucket_elements(0), 7);
  const torch::Tensor x = gathered_inputs(0);
  // Only rank 0 uses the extra parameter, so on the others bucket 0 never fills during
  // backward and the later buckets must wait for finish() to start it first.
  auto uses_extra = [](int r, int) { return r == 0; };
  loss_of(params, x[comm.rank()], uses_extra(comm.rank(), 0)).backward();
  buckets.finish();
  const auto expected = expected_sum(params, {x}, uses_extra);
  expect_grads(params, expected);
  // The sum differs from this rank's own gradient (at np >= 2), so a missing reduction fails.
  auto own = plain_copies(params);
  loss_of(own, x[comm.rank()], uses_extra(comm.rank(), 0)).backward();
  EXPECT_GT((own[0].grad() - params[0].grad()).abs().max().item<double>(), 1e-3);
  // Rank 0's extra gradient reached the ranks that did not use it.
  EXPECT_GT(params[4].grad().abs().max().item<double>(), 1e-3);

  // A second step after zeroing starts from clean buckets.
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  const torch::Tensor x2 = gathered_inputs(7);
  auto uses_extra_last = [&](int r, int) { return r == comm.size() - 1; };
  loss_of(params, x2[comm.rank()], uses_extra_last(comm.rank(), 0)).backward();
  buckets.finish();
  expect_grads(params, expected_sum(params, {x2}, uses_extra_last));
}

TEST(GradientBucketsMpi, AccumulatesMicroBatchesWithSyncOffThenReducesOnce) {
  Communicator comm(mpi_world(), torch::kCPU);
  auto params = make_params();
  GradientBuckets buckets(comm, params, 32);
  std::vector<torch::Tensor> inputs;
  for (int micro = 0; micro < 3; ++micro) inputs.push_back(gathered_inputs(micro));
  // The extra parameter gets a gradient only in the first micro-batch on rank 0: in the
  // synced backward it has none, so finish() must send what was accumulated.
  auto uses_extra = [](int r, int micro) { return r == 0 && micro == 0; };
  for (int micro = 0; micro < 3; ++micro) {
    buckets.set_sync(micro == 2);
    loss_of(params, inputs[micro][comm.rank()], uses_extra(comm.rank(), micro)).backward();
    if (micro == 0) {
      // Nothing was sent: the grads are still this rank's own.
      auto own = plain_copies(params);
      loss_of(own, inputs[0][comm.rank()], uses_extra(comm.rank(), 0)).backward();
      EXPECT_TRUE(torch::allclose(own[0].grad(), params[0].grad()));
    }
  }
  buckets.finish();
  expect_grads(params, expected_sum(params, inputs, uses_extra));
}

TEST(GradientBucketsMpi, ParameterWithoutGradientOnAnyRankGetsZeros) {
  Communicator comm(mpi_world(), torch::kCPU);
  auto params = make_params();
  GradientBuckets buckets(comm, params, 16);
  const torch::Tensor x = gathered_inputs(3);
  loss_of(params, x[comm.rank()], false).backward();
  buckets.finish();
  expect_grads(params, expected_sum(params, {x}, [](int, int) { return false; }));
  EXPECT_EQ(params[4].grad().abs().max().item<double>(), 0.0);
}

TEST(GradientBucketsMpi, DestroyedBucketsLeaveBackwardLocal) {
  Communicator comm(mpi_world(), torch::kCPU);
  auto params = make_params();
  { GradientBuckets buckets(comm, params, 20); }
  const torch::Tensor x = gathered_inputs(5);
  // With a hook left behind this backward would call into freed state or hang in MPI.
  loss_of(params, x[comm.rank()], true).backward();
  auto own = plain_copies(params);
  loss_of(own, x[comm.rank()], true).backward();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::allclose(own[i].grad(), params[i].grad()));
}

TEST(GradientBucketsMpi, RefusesParametersItCannotHook) {
  Communicator comm(mpi_world(), torch::kCPU);
  const torch::Tensor leaf = torch::zeros({2}).requires_grad_();
  EXPECT_THROW(GradientBuckets(comm, {torch::zeros({2})}), std::invalid_argument);           // no grad
  EXPECT_THROW(GradientBuckets(comm, {leaf * 2}), std::invalid_argument);                    // not a leaf
  EXPECT_THROW(GradientBuckets(comm, {leaf, leaf}), std::invalid_argument);                  // twice
  EXPECT_THROW(GradientBuckets(comm, {torch::zeros({2}, torch::kDouble).requires_grad_()}),  // float64
               std::invalid_argument);
  EXPECT_THROW(GradientBuckets(comm, {leaf}, 0), std::invalid_argument);
}

}  // namespace
}  // namespace kmoe

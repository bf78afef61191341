// Communicator over MPI: in-place sums of each dtype, started sums finished in any
// order, agreement on a flag, and clear refusals. Every rank puts in values that depend
// on its rank, so a sum that skipped or repeated a rank would be wrong.
#include "trainer/communicator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/mpi_world.h"
#include "tests/unit/error_of.h"
#include "trainer/gpu_probe.h"

namespace kmoe {
namespace {

TEST(CommunicatorMpi, SumsFloat32Float64AndInt64InPlace) {
  Communicator comm(mpi_world(), torch::kCPU);
  const int r = comm.rank(), n = comm.size();
  EXPECT_EQ(n, mpi_world().size);
  const double rank_sum = n * (n - 1) / 2.0;

  torch::Tensor f = torch::arange(5, torch::kFloat) * 0.5 + r;
  comm.allreduce_sum(f);
  for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(f[i].item<float>(), n * 0.5f * i + rank_sum);

  // Values float32 cannot hold: a float64 sum that went through float would lose them.
  torch::Tensor d = torch::full({3}, 1.0 + 1e-12 * (r + 1), torch::kDouble);
  comm.allreduce_sum(d);
  EXPECT_NEAR(d[0].item<double>() - n, 1e-12 * (rank_sum + n), 1e-14);

  // Past 2^32: an int32 sum would wrap.
  torch::Tensor l = torch::full({2, 2}, (int64_t{1} << 40) + r, torch::kLong);
  comm.allreduce_sum(l);
  EXPECT_EQ(l[1][1].item<int64_t>(), n * (int64_t{1} << 40) + static_cast<int64_t>(rank_sum));
}

TEST(CommunicatorMpi, StartedSumsFinishInAnyOrder) {
  Communicator comm(mpi_world(), torch::kCPU);
  const int r = comm.rank(), n = comm.size();
  torch::Tensor a = torch::full({1000}, static_cast<float>(r + 1));
  torch::Tensor b = torch::arange(10, torch::kFloat) * static_cast<float>(r);
  torch::Tensor c = torch::full({4}, 2.0f);
  auto pa = comm.allreduce_sum_async(a);
  auto pb = comm.allreduce_sum_async(b);
  {
    auto pc = comm.allreduce_sum_async(c);  // destroyed unwaited: waits
  }
  EXPECT_FLOAT_EQ(c[3].item<float>(), 2.0f * n);
  pb->wait();
  pb->wait();  // idempotent
  EXPECT_TRUE(pb->test());
  pa->wait();
  EXPECT_FLOAT_EQ(a[999].item<float>(), n * (n + 1) / 2.0f);
  EXPECT_FLOAT_EQ(b[9].item<float>(), 9.0f * n * (n - 1) / 2.0f);
}

TEST(CommunicatorMpi, AnyIsTrueEverywhereWhenOneRankSaysSo) {
  Communicator comm(mpi_world(), torch::kCPU);
  EXPECT_FALSE(comm.any(false));
  EXPECT_TRUE(comm.any(true));
  EXPECT_TRUE(comm.any(comm.rank() == comm.size() - 1));
  EXPECT_FALSE(comm.any(comm.rank() == comm.size()));
}

TEST(CommunicatorMpi, RefusesUnsupportedTensorsBeforeAnyCollective) {
  Communicator comm(mpi_world(), torch::kCPU);
  torch::Tensor i32 = torch::zeros({3}, torch::kInt);
  EXPECT_NE(error_of([&] { comm.allreduce_sum(i32); }).find("Int"), std::string::npos);
  torch::Tensor strided = torch::zeros({4, 4}).t();
  EXPECT_NE(error_of([&] { comm.allreduce_sum(strided); }).find("not contiguous"), std::string::npos);
  EXPECT_NE(error_of([&] { comm.allreduce_sum_async(torch::zeros({2}, torch::kDouble)); }).find("not float32"),
            std::string::npos);
  torch::Tensor undefined;
  EXPECT_NE(error_of([&] { comm.allreduce_sum(undefined); }).find("undefined"), std::string::npos);
  // Still in step with the other ranks after the refusals.
  torch::Tensor one = torch::ones({1});
  comm.allreduce_sum(one);
  EXPECT_FLOAT_EQ(one.item<float>(), static_cast<float>(comm.size()));
}

TEST(CommunicatorMpi, CudaDeviceWithoutAGpuIsAClearError) {
  const GpuInfo gpu = gpu_probe();
  if (gpu.device_count > 0) {
    // A GPU machine: the NCCL communicator comes up on the node-local GPU.
    Communicator comm(mpi_world(), torch::Device(torch::kCUDA));
    EXPECT_EQ(comm.device(), torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(mpi_world().local_rank)));
    return;
  }
  // Every rank throws (collectively agreed), so none is left waiting in a collective.
  const std::string error = error_of([] { Communicator comm(mpi_world(), torch::Device(torch::kCUDA, 0)); });
  EXPECT_NE(error.find("CUDA"), std::string::npos) << error;
  EXPECT_NE(error.find(gpu.nccl_compiled ? "device" : "NCCL"), std::string::npos) << error;
}

}  // namespace
}  // namespace kmoe

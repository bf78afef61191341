#include "data/store/artifact_tensor.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/mpi_world.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

TEST(ArtifactTensor, FloatAndIntegerTensorsRoundTrip) {
  testing::TempDir dir;
  const std::string path = dir / "t.h5";
  torch::manual_seed(0);
  const auto w = torch::randn({3, 5});
  const auto idx = torch::arange(12).reshape({3, 4});
  const auto mask = torch::tensor({true, false, true});
  const auto strided = torch::randn({4, 6}).t();  // non-contiguous
  {
    Provenance p;
    p.stage = "test";
    ArtifactWriter writer(mpi_world().comm, path, p);
    artifact_write_tensor(writer, "w", w);
    artifact_write_tensor(writer, "w16", w, StoreType::f16);
    artifact_write_tensor(writer, "idx", idx);
    artifact_write_tensor(writer, "mask", mask);
    artifact_write_tensor(writer, "strided", strided);
    EXPECT_THROW(artifact_write_tensor(writer, "c", torch::zeros({2}, torch::kComplexFloat)), std::invalid_argument);
    writer.commit();
  }
  ArtifactReader r(path);
  EXPECT_TRUE(torch::equal(artifact_read_tensor(r, "w"), w));
  EXPECT_TRUE(torch::equal(artifact_read_tensor(r, "w16"), w.to(torch::kHalf).to(torch::kFloat)));
  EXPECT_TRUE(torch::equal(artifact_read_tensor(r, "idx"), idx));
  EXPECT_TRUE(torch::equal(artifact_read_tensor(r, "mask"), mask.to(torch::kInt64)));
  EXPECT_TRUE(torch::equal(artifact_read_tensor(r, "strided"), strided));
}

}  // namespace
}  // namespace kmoe

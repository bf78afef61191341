#include <gtest/gtest.h>

#include <filesystem>

#include "data/store/artifact.h"
#include "data/formats/float16.h"
#include "runtime/mpi_world.h"

namespace kmoe {
namespace {

std::string shared_temp_dir(const MpiWorld& w) {
  std::string path;
  if (w.is_root()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kmoe-mpi-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  int n = static_cast<int>(path.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, w.comm);
  path.resize(n);
  MPI_Bcast(path.data(), n, MPI_CHAR, 0, w.comm);
  return path;
}

float value_at(int64_t row, int64_t col) {
  return static_cast<float>(row * 1000 + col) + 0.25f;
}

TEST(ArtifactMpi, CollectiveRowWriteFromAllRanksReadsBack) {
  const MpiWorld& w = mpi_world();
  const std::string dir = shared_temp_dir(w);
  const std::string path = dir + "/embeddings.h5";
  const int64_t rows = 1001, cols = 7;  // rows not divisible by the rank count
  Provenance p;
  p.stage = "embed";
  p.world_size = w.size;
  {
    ArtifactWriter writer(w.comm, path, p);
    writer.create_rows("embeddings", rows, cols, StoreType::f32, 64);
    writer.create_rows("embeddings16", rows, cols, StoreType::f16, 64);
    // Each rank writes its static block in two rounds of different sizes.
    const Range mine = static_split(rows, w.rank, w.size);
    const int64_t first = mine.size() / 3;
    for (auto [begin, count] : {std::pair{mine.begin, first}, std::pair{mine.begin + first, mine.size() - first}}) {
      std::vector<float> block(static_cast<size_t>(count * cols));
      for (int64_t r = 0; r < count; ++r)
        for (int64_t c = 0; c < cols; ++c) block[r * cols + c] = value_at(begin + r, c);
      writer.write_rows("embeddings", begin, count, block.data());
      writer.write_rows("embeddings16", begin, count, block.data());
    }
    const std::vector<std::string> ids = {"a", "bb", "ccc"};
    writer.write_strings("ids", w.is_root() ? ids : std::vector<std::string>{"a", "bb", "ccc"});
    writer.set_attr("embeddings", "encoder", std::string("minilm"));
    writer.commit();
  }
  ArtifactReader r(path);  // every rank reads the whole thing back
  const auto all = r.read_floats("embeddings");
  ASSERT_EQ(all.size(), static_cast<size_t>(rows * cols));
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(all[row * cols + c], value_at(row, c)) << row << "," << c;
  const auto half = r.read_floats("embeddings16");
  EXPECT_EQ(half[5 * cols + 3], 5004.0f);  // 5003.25 rounded to float16, whose spacing is 4 here
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(half[i], half_bits_to_float(float_to_half_bits(all[i]))) << i;
  EXPECT_EQ(r.read_strings("ids"), (std::vector<std::string>{"a", "bb", "ccc"}));
  EXPECT_EQ(r.attr_string("embeddings", "encoder"), "minilm");
  EXPECT_EQ(r.attr_int64("/", "world_size"), w.size);
  MPI_Barrier(w.comm);
  if (w.is_root()) std::filesystem::remove_all(dir);
}

TEST(ArtifactMpi, SmallDatasetsComeFromRankZero) {
  const MpiWorld& w = mpi_world();
  const std::string dir = shared_temp_dir(w);
  const std::string path = dir + "/scores.h5";
  {
    Provenance p;
    p.stage = "score";
    ArtifactWriter writer(w.comm, path, p);
    const std::vector<float> acc = {0.5f, 0.75f};
    writer.write_floats("acc", {2}, w.is_root() ? acc.data() : nullptr);
    writer.commit();
  }
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(ArtifactReader(path).read_floats("acc"), (std::vector<float>{0.5f, 0.75f}));
  MPI_Barrier(w.comm);
  if (w.is_root()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kmoe

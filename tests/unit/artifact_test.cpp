#include "data/store/artifact.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/formats/float16.h"
#include "runtime/mpi_world.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

Provenance test_provenance(const std::string& options = R"({"lr":0.1})") {
  Provenance p;
  p.stage = "score";
  p.kmoe_version = "0.1.0";
  p.git_revision = "abc";
  p.options_json = options;
  p.inputs = {{"kshot", "k.jsonl", "1111"}, {"model", "m/", "2222"}};
  p.world_size = 1;
  return p;
}

TEST(Artifact, WritesAndReadsEveryKind) {
  testing::TempDir dir;
  const std::string path = dir / "out/scores.h5";  // parent folder is created
  {
    ArtifactWriter w(mpi_world().comm, path, test_provenance());
    const std::vector<float> f = {1.5f, -2.25f, 3.0f, 1e-3f, 65504.f, 0.1f};
    w.write_floats("nll", {2, 3}, f.data());
    w.write_floats("half/values", {6}, f.data(), StoreType::f16);
    const std::vector<int64_t> ids = {7, -1, int64_t{1} << 40};
    w.write_int64("ids", {3}, ids.data());
    w.write_strings("adapters", {"alpaca", "", "ünïcode 中文"});
    w.write_floats("empty", {0}, nullptr);
    w.set_attr("nll", "unit", std::string("nats"));
    w.set_attr("/", "k", int64_t{50});
    w.set_attr("/", "tau", 0.9);
    EXPECT_FALSE(std::filesystem::exists(path)) << "nothing under the final name before commit";
    EXPECT_TRUE(std::filesystem::exists(path + ".partial"));
    w.commit();
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  ArtifactReader r(path);
  EXPECT_EQ(r.shape("nll"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.read_floats("nll"), (std::vector<float>{1.5f, -2.25f, 3.0f, 1e-3f, 65504.f, 0.1f}));
  const auto half = r.read_floats("half/values");
  ASSERT_EQ(half.size(), 6u);
  EXPECT_EQ(half[0], 1.5f);
  EXPECT_EQ(half[4], 65504.f);
  EXPECT_EQ(half[5], half_bits_to_float(float_to_half_bits(0.1f)));
  EXPECT_EQ(r.read_int64("ids"), (std::vector<int64_t>{7, -1, int64_t{1} << 40}));
  EXPECT_EQ(r.read_int64_at("ids", {2, 0, 2}), (std::vector<int64_t>{int64_t{1} << 40, 7, int64_t{1} << 40}));
  EXPECT_TRUE(r.read_int64_at("ids", {}).empty());
  EXPECT_THROW(r.read_int64_at("ids", {3}), std::out_of_range);
  EXPECT_EQ(r.read_strings("adapters"), (std::vector<std::string>{"alpaca", "", "ünïcode 中文"}));
  EXPECT_TRUE(r.read_floats("empty").empty());
  EXPECT_EQ(r.attr_string("nll", "unit"), "nats");
  EXPECT_EQ(r.attr_int64("/", "k"), 50);
  EXPECT_DOUBLE_EQ(r.attr_double("/", "tau"), 0.9);
  EXPECT_TRUE(r.has("half/values"));
  EXPECT_FALSE(r.has("half/nothing"));
  EXPECT_FALSE(r.has("nothing/at/all"));

  const Provenance p = r.provenance();
  EXPECT_EQ(p.stage, "score");
  EXPECT_EQ(p.options_json, R"({"lr":0.1})");
  ASSERT_EQ(p.inputs.size(), 2u);
  EXPECT_EQ(p.inputs[1].name, "model");
  EXPECT_EQ(p.inputs[1].sha256, "2222");
  EXPECT_EQ(r.attr_int64("/", "complete"), 1);
  EXPECT_FALSE(r.attr_string("/", "end_time").empty());
}

TEST(Artifact, RowDatasetsReadBackByBlock) {
  testing::TempDir dir;
  const std::string path = dir / "emb.h5";
  std::vector<float> rows(10 * 4);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i) * 0.5f;
  {
    ArtifactWriter w(mpi_world().comm, path, test_provenance());
    w.create_rows("embeddings", 10, 4, StoreType::f32, 3);
    w.write_rows("embeddings", 0, 6, rows.data());
    w.write_rows("embeddings", 6, 4, rows.data() + 24);
    w.write_rows("embeddings", 6, 0, nullptr);  // an empty block is allowed
    EXPECT_THROW(w.write_rows("embeddings", 8, 4, rows.data()), std::out_of_range);
    w.commit();
  }
  ArtifactReader r(path);
  EXPECT_EQ(r.read_floats("embeddings"), rows);
  const auto block = r.read_rows("embeddings", 3, 2);
  EXPECT_EQ(block, std::vector<float>(rows.begin() + 12, rows.begin() + 20));
}

TEST(Artifact, WithoutCommitNothingAppearsUnderTheFinalName) {
  testing::TempDir dir;
  const std::string path = dir / "scores.h5";
  {
    ArtifactWriter w(mpi_world().comm, path, test_provenance());
    const float x = 1;
    w.write_floats("x", {1}, &x);
  }  // destroyed without commit, e.g. a stage that returned early
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(artifact_check(path, test_provenance()).complete);
}

TEST(Artifact, ErrorsNameTheFileAndDataset) {
  testing::TempDir dir;
  const std::string path = dir / "a.h5";
  {
    ArtifactWriter w(mpi_world().comm, path, test_provenance());
    const float x = 1;
    w.write_floats("x", {1}, &x);
    try {
      w.write_floats("x", {1}, &x);  // already exists
      FAIL();
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("a.h5.partial"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
    }
    w.commit();
  }
  ArtifactReader r(path);
  try {
    r.read_floats("nope");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("a.h5: missing dataset 'nope'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ArtifactReader(dir / "missing.h5"), std::runtime_error);
}

TEST(ArtifactCheck, AcceptsOnlySameStageOptionsAndInputs) {
  testing::TempDir dir;
  const std::string path = dir / "scores.h5";
  EXPECT_EQ(artifact_check(path, test_provenance()).reason, "missing");
  {
    ArtifactWriter w(mpi_world().comm, path, test_provenance());
    w.commit();
  }
  EXPECT_TRUE(artifact_check(path, test_provenance()).complete);

  Provenance other_input = test_provenance();
  other_input.inputs[0].sha256 = "9999";
  auto s = artifact_check(path, other_input);
  EXPECT_FALSE(s.complete);
  EXPECT_NE(s.reason.find("'kshot' differs"), std::string::npos) << s.reason;

  auto opts = artifact_check(path, test_provenance(R"({"lr":0.2})"));
  EXPECT_FALSE(opts.complete);
  EXPECT_NE(opts.reason.find("lr (0.1 -> 0.2)"), std::string::npos) << opts.reason;

  Provenance other_stage = test_provenance();
  other_stage.stage = "embed";
  EXPECT_FALSE(artifact_check(path, other_stage).complete);

  Provenance extra_input = test_provenance();
  extra_input.inputs.push_back({"bank", "b/", "3333"});
  EXPECT_FALSE(artifact_check(path, extra_input).complete);

  Provenance fewer_inputs = test_provenance();
  fewer_inputs.inputs.pop_back();
  EXPECT_FALSE(artifact_check(path, fewer_inputs).complete);

  Provenance moved = test_provenance();  // same content at another path is the same input
  moved.inputs[0].path = "/elsewhere/k.jsonl";
  EXPECT_TRUE(artifact_check(path, moved).complete);
}

TEST(ArtifactCheck, RejectsForeignAndTruncatedFiles) {
  testing::TempDir dir;
  std::ofstream(dir / "junk.h5") << "not hdf5";
  EXPECT_FALSE(artifact_check(dir / "junk.h5", test_provenance()).complete);
  const std::string path = dir / "a.h5";
  {
    ArtifactWriter w(mpi_world().comm, path, test_provenance());
    w.commit();
  }
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  const auto s = artifact_check(path, test_provenance());
  EXPECT_FALSE(s.complete);
}

}  // namespace
}  // namespace kmoe

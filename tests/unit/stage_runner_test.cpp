#include "runtime/stage_runner.h"

#include <gtest/gtest.h>

#include <fstream>

#include "temp_dir.h"

namespace kmoe {
namespace {

struct StageRunnerTest : ::testing::Test {
  testing::TempDir dir;
  int runs = 0;
  StageSpec spec() {
    StageSpec s;
    s.stage = "score";
    s.output = dir / "scores.h5";
    s.options = {{"batch_size", 8}, {"template", "alpaca"}};
    s.inputs = {{"kshot", dir / "kshot.jsonl"}};
    return s;
  }
  StageOutcome run(const StageSpec& s) {
    return stage_run(mpi_world(), s, [&](const Provenance& p) {
      ++runs;
      ArtifactWriter w(mpi_world().comm, s.output, p);
      const int64_t n = runs;
      w.write_int64("run", {1}, &n);
      w.commit();
    });
  }
  void SetUp() override { std::ofstream(dir / "kshot.jsonl") << "{\"id\": 1}\n"; }
};

TEST_F(StageRunnerTest, SkipsACompleteStageAndRerunsWhenInputsOrOptionsChange) {
  EXPECT_FALSE(run(spec()).skipped);
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(run(spec()).skipped);
  EXPECT_EQ(runs, 1);

  std::ofstream(dir / "kshot.jsonl") << "{\"id\": 2}\n";  // same path, new content
  const auto changed = run(spec());
  EXPECT_FALSE(changed.skipped);
  EXPECT_NE(changed.reason.find("'kshot' differs"), std::string::npos) << changed.reason;
  EXPECT_EQ(runs, 2);

  auto s = spec();
  s.options["batch_size"] = 16;
  EXPECT_FALSE(run(s).skipped);
  EXPECT_TRUE(run(s).skipped);
  s.force = true;
  EXPECT_EQ(run(s).reason, "forced");
  EXPECT_EQ(runs, 4);
  EXPECT_EQ(ArtifactReader(spec().output).read_int64("run"), std::vector<int64_t>{4});
}

TEST_F(StageRunnerTest, ProvenanceRecordsInputHashesAndOptions) {
  run(spec());
  const Provenance p = ArtifactReader(spec().output).provenance();
  ASSERT_EQ(p.inputs.size(), 1u);
  EXPECT_EQ(p.inputs[0].name, "kshot");
  EXPECT_EQ(p.inputs[0].sha256.size(), 64u);
  EXPECT_EQ(p.options_json, R"({"batch_size":8,"template":"alpaca"})");
  EXPECT_EQ(p.world_size, 1);
  EXPECT_FALSE(p.git_revision.empty());
}

TEST_F(StageRunnerTest, MissingInputIsAnErrorNamingIt) {
  auto s = spec();
  s.inputs.push_back({"bank", dir / "no-bank"});
  try {
    run(s);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-bank"), std::string::npos) << e.what();
  }
  EXPECT_EQ(runs, 0);
}

}  // namespace
}  // namespace kmoe

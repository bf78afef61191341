#include "runtime/output_guard.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/store/artifact.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

namespace fs = std::filesystem;

void write_artifact(const std::string& path, const std::string& stage) {
  Provenance p;
  p.stage = stage;
  ArtifactWriter w(mpi_world().comm, path, p);
  w.commit();
}

std::string refusal(const OutputSet& out, const std::vector<std::pair<std::string, std::string>>& inputs = {}) {
  try {
    output_check(out, inputs);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(PathNormalize, TrailingSlashesAndDotsNameOneFolder) {
  EXPECT_EQ(path_normalize("dir/"), "dir");
  EXPECT_EQ(path_normalize("dir//"), "dir");
  EXPECT_EQ(path_normalize("./a//b/"), "a/b");
  EXPECT_EQ(path_normalize("."), ".");
  EXPECT_EQ(path_normalize("./"), ".");
  EXPECT_EQ(path_normalize("/"), "/");
}

TEST(OutputCheck, RefusesAUsersFolderButTakesAnEmptyOneOrItsOwn) {
  testing::TempDir dir;
  fs::create_directories(dir / "keep");
  std::ofstream(dir / "keep/canary.txt") << "x";
  const std::string why = refusal({"train", dir / "keep/train.h5", dir / "keep", {}});
  EXPECT_NE(why.find("not written by kmoe train"), std::string::npos) << why;
  EXPECT_TRUE(fs::exists(dir / "keep/canary.txt"));

  fs::create_directories(dir / "empty");
  EXPECT_EQ(refusal({"train", dir / "empty/train.h5", dir / "empty", {}}), "");
  EXPECT_EQ(refusal({"train", dir / "new/train.h5", dir / "new", {}}), "");

  fs::create_directories(dir / "mine");
  write_artifact(dir / "mine/train.h5", "train");
  std::ofstream(dir / "mine/adapter_model.safetensors") << "x";
  EXPECT_EQ(refusal({"train", dir / "mine/train.h5", dir / "mine", {}}), "");
}

TEST(OutputCheck, RefusesTheCommandsOwnInputAndWhatHoldsOrContainsIt) {
  testing::TempDir dir;
  fs::create_directories(dir / "model");
  std::ofstream(dir / "model/model.safetensors") << "w";
  std::ofstream(dir / "kshot.jsonl") << "{}\n";
  const std::vector<std::pair<std::string, std::string>> inputs = {{"model", dir / "model"},
                                                                     {"kshot", dir / "kshot.jsonl"}};
  std::string why = refusal({"score", dir / "kshot.jsonl", "", {}}, inputs);
  EXPECT_NE(why.find("input 'kshot'"), std::string::npos) << why;
  why = refusal({"train", dir / "model/train.h5", dir / "model/", {}}, inputs);  // trailing slash
  EXPECT_NE(why.find("input 'model'"), std::string::npos) << why;
  why = refusal({"score", dir / "model/scores.h5", "", {}}, inputs);
  EXPECT_NE(why.find("inside the command's input 'model'"), std::string::npos) << why;
  why = refusal({"train", dir.path.string() + "/train.h5", dir.path.string(), {}}, inputs);
  EXPECT_NE(why.find("holds the command's input"), std::string::npos) << why;
}

TEST(OutputCheck, RefusesTheWorkingDirectory) {
  testing::TempDir dir;
  const auto cwd = fs::current_path();
  fs::current_path(dir.path);
  const std::string why = refusal({"train", "./train.h5", ".", {}});
  fs::current_path(cwd);
  EXPECT_NE(why.find("working directory"), std::string::npos) << why;
}

TEST(OutputCheck, ReplacesOnlyAnArtifactOfTheSameStage) {
  testing::TempDir dir;
  std::ofstream(dir / "notes.h5") << "my notes";
  std::string why = refusal({"score", dir / "notes.h5", "", {}});
  EXPECT_NE(why.find("not a kmoe artifact"), std::string::npos) << why;
  write_artifact(dir / "scores.h5", "score");
  EXPECT_EQ(refusal({"score", dir / "scores.h5", "", {}}), "");
  why = refusal({"eval", dir / "scores.h5", "", {}});
  EXPECT_NE(why.find("artifact of kmoe score"), std::string::npos) << why;
  // selected.jsonl beside a foreign data_selection.h5 is not kmoe's
  std::ofstream(dir / "selected.jsonl") << "{}\n";
  why = refusal({"select-data", dir / "data_selection.h5", "", {dir / "selected.jsonl"}});
  EXPECT_NE(why.find("selected.jsonl"), std::string::npos) << why;
  write_artifact(dir / "data_selection.h5", "select-data");
  EXPECT_EQ(refusal({"select-data", dir / "data_selection.h5", "", {dir / "selected.jsonl"}}), "");
}

TEST(OutputLock, ASecondHolderFailsAtOnceNamingTheFirst) {
  testing::TempDir dir;
  {
    OutputLock first(dir / "x.h5");
    EXPECT_EQ(first.path(), dir / "x.h5.lock");
    // OFD locks conflict between two open() calls even inside one process.
    try {
      OutputLock second(dir / "x.h5/");
      FAIL() << "two holders";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("being written by another kmoe process"), std::string::npos) << what;
      EXPECT_NE(what.find("pid " + std::to_string(::getpid())), std::string::npos) << what;
    }
    OutputLock other(dir / "y.h5");  // another output is free
  }
  EXPECT_FALSE(fs::exists(dir / "x.h5.lock"));  // released and removed
  OutputLock again(dir / "x.h5");
  OutputLock moved = std::move(again);
  EXPECT_THROW(OutputLock(dir / "x.h5"), std::runtime_error);
}

TEST(OutputLock, AStaleLockFileFromAKilledRunDoesNotBlock) {
  testing::TempDir dir;
  std::ofstream(dir / "x.h5.lock") << "pid 1 on nowhere, since 2020\n";
  OutputLock lock(dir / "x.h5");
  EXPECT_EQ(lock.path(), dir / "x.h5.lock");
}

TEST(StageRunLocks, TheOutputIsLockedWhileTheStageRuns) {
  testing::TempDir dir;
  std::ofstream(dir / "kshot.jsonl") << "{}\n";
  StageSpec s;
  s.stage = "score";
  s.output = dir / "scores.h5";
  s.inputs = {{"kshot", dir / "kshot.jsonl"}};
  bool ran = false;
  stage_run(mpi_world(), s, [&](const Provenance& p) {
    EXPECT_TRUE(fs::exists(dir / "scores.h5.lock"));
    EXPECT_THROW(stage_run(mpi_world(), s, [&](const Provenance&) { FAIL() << "a second writer ran"; }),
                 std::runtime_error);
    ArtifactWriter w(mpi_world().comm, s.output, p);
    w.commit();
    ran = true;
  });
  EXPECT_TRUE(ran);
  EXPECT_FALSE(fs::exists(dir / "scores.h5.lock"));
  s.output = dir / "kshot.jsonl";
  EXPECT_THROW(stage_run(mpi_world(), s, [&](const Provenance&) { FAIL() << "wrote over its input"; }),
               std::runtime_error);
}

}  // namespace
}  // namespace kmoe

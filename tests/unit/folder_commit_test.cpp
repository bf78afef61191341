#include "data/store/folder_commit.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "temp_dir.h"

namespace kmoe {
namespace {

namespace fs = std::filesystem;

std::string read(const std::string& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(FolderCommit, PartialIsASiblingHoweverTheFolderIsSpelled) {
  EXPECT_EQ(folder_partial_path("a/model/"), "a/model.partial");
  EXPECT_EQ(folder_partial_path("a/model"), "a/model.partial");
  EXPECT_EQ(folder_partial_path("./model//"), "model.partial");
}

TEST(FolderCommit, ReplacesAnOldFolderAndLeavesNothingBeside) {
  testing::TempDir dir;
  fs::create_directories(dir / "m");
  std::ofstream(dir / "m/old.txt") << "old";
  fs::create_directories(dir / "m.partial/sub");
  std::ofstream(dir / "m.partial/sub/new.txt") << "new";
  folder_commit(dir / "m.partial", dir / "m/");
  EXPECT_EQ(read(dir / "m/sub/new.txt"), "new");
  EXPECT_FALSE(fs::exists(dir / "m/old.txt"));
  EXPECT_FALSE(fs::exists(dir / "m.partial"));
  EXPECT_FALSE(fs::exists(dir / "m.old"));
}

TEST(FolderCommit, AMissingPartialIsAnErrorAndTheOldFolderStays) {
  testing::TempDir dir;
  fs::create_directories(dir / "m");
  std::ofstream(dir / "m/old.txt") << "old";
  EXPECT_THROW(folder_commit(dir / "m.partial", dir / "m"), std::exception);
  EXPECT_EQ(read(dir / "m/old.txt"), "old");
}

}  // namespace
}  // namespace kmoe

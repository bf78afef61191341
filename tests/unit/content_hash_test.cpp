#include "data/store/content_hash.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "temp_dir.h"

namespace kmoe {
namespace {

TEST(ContentHash, KnownSha256Vectors) {
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ContentHash, FileHashIsSha256OfContents) {
  testing::TempDir dir;
  std::ofstream(dir / "a.txt") << "abc";
  EXPECT_EQ(content_hash(dir / "a.txt"), sha256_hex("abc", 3));
  EXPECT_THROW(content_hash(dir / "missing"), std::runtime_error);
}

TEST(ContentHash, DirectoryHashChangesWithAnyFileOrName) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path / "adapter" / "sub");
  std::ofstream(dir / "adapter/adapter_config.json") << "{\"r\": 16}";
  std::ofstream(dir / "adapter/sub/weights.bin") << "0123";
  const std::string h0 = content_hash(dir / "adapter");
  EXPECT_EQ(content_hash(dir / "adapter"), h0);
  std::ofstream(dir / "adapter/sub/weights.bin") << "0124";
  const std::string h1 = content_hash(dir / "adapter");
  EXPECT_NE(h1, h0);
  std::filesystem::rename(dir.path / "adapter/sub/weights.bin", dir.path / "adapter/sub/weights2.bin");
  EXPECT_NE(content_hash(dir / "adapter"), h1);
}

}  // namespace
}  // namespace kmoe

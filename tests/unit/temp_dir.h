// A fresh folder per test under the system temp dir, removed afterwards.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace kmoe::testing {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kmoe-test-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

}  // namespace kmoe::testing

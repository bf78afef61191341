// See folder_commit.h. The fsyncs make the rename a commit on a power loss too: the
// folder's files reach the disk before its name does.
#include "data/store/folder_commit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace kmoe {

namespace fs = std::filesystem;

namespace {

std::string trimmed(const std::string& dir) {
  std::string s = fs::path(dir).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

void fsync_or_throw(const fs::path& p, const std::string& what) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(what + ": cannot open " + p.string() + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) throw std::runtime_error(what + ": cannot sync " + p.string() + ": " + std::strerror(err));
}

}  // namespace

void path_sync(const std::string& path) { fsync_or_throw(path, path); }

std::string folder_partial_path(const std::string& dir) { return trimmed(dir) + ".partial"; }

void folder_commit(const std::string& partial, const std::string& dir) {
  const fs::path target = trimmed(dir);
  const fs::path old = target.string() + ".old";
  for (const auto& e : fs::recursive_directory_iterator(partial))
    if (e.is_regular_file()) fsync_or_throw(e.path(), target.string());
  fsync_or_throw(partial, target.string());
  std::error_code ec;
  fs::remove_all(old, ec);
  if (fs::exists(fs::symlink_status(target, ec))) {
    fs::rename(target, old, ec);
    if (ec) throw std::runtime_error(target.string() + ": cannot move the old folder aside: " + ec.message());
  }
  fs::rename(partial, target, ec);
  if (ec) throw std::runtime_error(target.string() + ": cannot rename " + partial + " into place: " + ec.message());
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  fsync_or_throw(parent, target.string());
  fs::remove_all(old, ec);
}

}  // namespace kmoe

// See output_guard.h. Paths are compared after weakly_canonical(), so "a/../b", symbolic
// links and trailing slashes name one thing; the lock file's content (pid, host, start
// time) is only for the message a second writer gets, never for deciding anything.
#include "runtime/output_guard.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "data/store/artifact.h"

namespace kmoe {

namespace fs = std::filesystem;

namespace {

fs::path resolved(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path_normalize(path), ec);
  if (ec) return fs::path(path).lexically_normal();
  fs::path r = fs::weakly_canonical(abs, ec);
  return path_normalize((ec ? abs.lexically_normal() : r).string());
}

// inner is outer, or somewhere under it.
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto o = outer.begin();
  auto i = inner.begin();
  for (; o != outer.end(); ++o, ++i) {
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

[[noreturn]] void refuse(const std::string& what, const std::string& why) {
  throw std::runtime_error(what + ": " + why);
}

void check_artifact_file(const std::string& path, const std::string& stage) {
  std::error_code ec;
  const auto st = fs::symlink_status(path, ec);
  if (ec || !fs::exists(st)) return;
  if (!fs::is_regular_file(fs::status(path, ec)))
    refuse(path, "exists and is not a file; kmoe " + stage + " will not replace it (choose another output)");
  const std::string made_by = artifact_stage(path);
  if (made_by.empty())
    refuse(path, "exists and is not a kmoe artifact; kmoe replaces only what it wrote (remove it or choose another "
                 "output)");
  if (made_by != stage)
    refuse(path, "is the artifact of kmoe " + made_by + ", not of kmoe " + stage +
                     "; kmoe will not replace it (choose another output)");
}

void check_folder(const std::string& dir, const std::string& stage) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return;
  if (!fs::is_directory(fs::status(dir, ec)))
    refuse(dir, "exists and is not a folder; kmoe " + stage + " will not replace it (choose another output)");
  if (fs::is_empty(dir, ec)) return;
  const std::string marker = (fs::path(dir) / "train.h5").string();
  if (fs::is_regular_file(marker, ec) && artifact_stage(marker) == stage) return;
  refuse(dir, "exists, is not empty and was not written by kmoe " + stage +
                  " (it has no kmoe train.h5); kmoe replaces only what it wrote, so nothing of it was touched "
                  "(remove it or choose another output)");
}

std::string holder_of(int fd) {
  char buf[256] = {0};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string s(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "holder unknown" : s;
}

}  // namespace

std::string path_normalize(const std::string& path) {
  if (path.empty()) return path;
  std::string s = fs::path(path).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s.empty() ? "." : s;
}

void output_check(const OutputSet& out, const std::vector<std::pair<std::string, std::string>>& inputs) {
  std::vector<std::string> outputs;
  if (!out.artifact.empty()) outputs.push_back(out.artifact);
  if (!out.folder.empty()) outputs.push_back(out.folder);
  for (const auto& f : out.extra_files) outputs.push_back(f);

  for (const auto& o : outputs) {
    const fs::path ro = resolved(o);
    for (const auto& [role, in] : inputs) {
      const fs::path ri = resolved(in);
      if (is_within(ri, ro))
        refuse(o, ri == ro ? "is also the command's input '" + role + "'; kmoe will not write over its own input"
                           : "holds the command's input '" + role + "' (" + in +
                                 "); writing it would destroy that input");
      if (is_within(ro, ri))
        refuse(o, "lies inside the command's input '" + role + "' (" + in + "); kmoe will not write into an input");
    }
  }
  if (!out.folder.empty()) {
    std::error_code ec;
    const fs::path cwd = fs::current_path(ec);
    if (!ec && is_within(resolved(cwd.string()), resolved(out.folder)))
      refuse(out.folder, "is the working directory or holds it; kmoe will not replace it (choose another output)");
    check_folder(out.folder, out.stage);
  } else if (!out.artifact.empty()) {
    check_artifact_file(out.artifact, out.stage);
  }
  for (const auto& f : out.extra_files) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(f, ec))) continue;
    if (!fs::is_regular_file(fs::status(f, ec)))
      refuse(f, "exists and is not a file; kmoe " + out.stage + " will not replace it");
    if (out.artifact.empty() || artifact_stage(out.artifact) != out.stage)
      refuse(f, "exists, but " + (out.artifact.empty() ? std::string("no artifact") : out.artifact) +
                    " beside it is not kmoe " + out.stage +
                    "'s; kmoe replaces only what it wrote (remove it or choose another output)");
  }
}

OutputLock::OutputLock(const std::string& target) {
  const char* off = std::getenv("KMOE_NO_LOCK");
  if (off && std::string(off) == "1") return;
  path_ = path_normalize(target) + ".lock";
  std::error_code ec;
  const auto parent = fs::path(path_).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(path_ + ": cannot create the lock file: " + std::strerror(errno));
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      const int err = errno;
      const std::string holder = holder_of(fd);
      ::close(fd);
      if (err == EAGAIN || err == EACCES)
        throw std::runtime_error(path_normalize(target) + " is being written by another kmoe process (" + holder +
                                 "; lock " + path_ + "); two writers would mix their results: wait for it, or stop it");
      throw std::runtime_error(path_ + ": cannot lock (" + std::strerror(err) +
                               "): the file system does not support fcntl locks (Lustre: mount with -o flock); "
                               "KMOE_NO_LOCK=1 runs without the lock, at your own risk");
    }
    // The previous holder unlinks the file before it lets go: if ours is no longer the one
    // at path_, we locked a ghost, and try again.
    struct stat mine {}, there {};
    if (::fstat(fd, &mine) == 0 && ::stat(path_.c_str(), &there) == 0 && mine.st_ino == there.st_ino &&
        mine.st_dev == there.st_dev) {
      char host[256] = {0};
      ::gethostname(host, sizeof host - 1);
      const std::string who =
          "pid " + std::to_string(::getpid()) + " on " + host + ", since " + utc_now_iso8601() + "\n";
      if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, who.data(), who.size(), 0) < 0) {
        // The content is only for messages; a failed write does not weaken the lock.
      }
      fd_ = fd;
      return;
    }
    ::close(fd);
  }
  throw std::runtime_error(path_ + ": cannot take the lock: the file keeps being replaced");
}

void OutputLock::release() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // before closing, so nobody locks the file after we let go of it
  ::close(fd_);
  fd_ = -1;
}

OutputLock::~OutputLock() { release(); }

OutputLock::OutputLock(OutputLock&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

OutputLock& OutputLock::operator=(OutputLock&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

}  // namespace kmoe

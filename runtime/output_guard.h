// What a stage may write over, and who may write it. Before a stage writes, its outputs are
// checked: an output may not be (or hold, or sit inside) one of the command's inputs, and
// may replace only what kmoe itself made for the same stage (an artifact, or a folder whose
// train.h5 is one); anything else (a user's folder, a JSONL file, the working directory) is
// refused. An OutputLock makes a second process with the same output fail at once.
//
// Locking: an open-file-description lock (fcntl F_OFD_SETLK, Linux >= 3.15) on OUTPUT.lock,
// held by rank 0 for the stage's whole run and released by the kernel when the process
// dies, so kill -9 leaves no stale lock (only an empty-of-meaning file, which the next
// run reuses). OFD locks, unlike classic POSIX locks, are not dropped when the process
// closes some other descriptor of the same file. On NFS (v3 with lockd, v4) they reach the
// server and hold across nodes; on Lustre only with the `flock` mount option (`localflock`
// makes them node-local; `noflock` makes fcntl fail, which is reported, with
// KMOE_NO_LOCK=1 as the way to run unlocked); on GPFS and BeeGFS (global file locks on)
// they hold across nodes.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace kmoe {

// "dir/" -> "dir", "./a//b" -> "a/b": one spelling per path, so that OUTPUT.partial and
// OUTPUT.lock are siblings of OUTPUT and never inside it.
std::string path_normalize(const std::string& path);

struct OutputSet {
  std::string stage;                     // the stage that writes them, e.g. "train"
  std::string artifact;                  // its HDF5 artifact (the final name)
  std::string folder;                    // a folder the stage writes as a whole (or "")
  std::vector<std::string> extra_files;  // other files it writes beside the artifact
};

// Throws std::runtime_error naming the output and the reason when writing `out` could
// destroy an input of the same command or something kmoe did not make. Serial.
void output_check(const OutputSet& out, const std::vector<std::pair<std::string, std::string>>& inputs);

class OutputLock {
 public:
  OutputLock() = default;
  // Takes the lock on `target`.lock or throws naming the holder (pid, host, start time).
  explicit OutputLock(const std::string& target);
  ~OutputLock();
  OutputLock(OutputLock&& other) noexcept;
  OutputLock& operator=(OutputLock&& other) noexcept;
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  void release();
  std::string path_;
  int fd_ = -1;
};

}  // namespace kmoe

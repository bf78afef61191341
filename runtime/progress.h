// Progress of a long stage on rank 0: done/total, rate and ETA. On a terminal the line is
// redrawn in place; in a log file (SLURM output) a line is written every `interval_s`, so
// batch logs stay readable. The clock is injectable so the arithmetic can be tested.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace kmoe {

struct ProgressOptions {
  double interval_s = 10.0;  // between lines when not on a terminal
  bool enabled = true;       // false on ranks other than 0
};

class Progress {
 public:
  using Clock = std::function<double()>;  // seconds, monotonic

  Progress(std::string what, int64_t total, std::string unit, ProgressOptions options, Clock clock = {});
  ~Progress();
  void advance(int64_t n = 1);
  void set(int64_t done);
  // `already` of the units were done by an earlier, interrupted run: they count towards done
  // but not towards the rate (and so the ETA), and the line says so. Call before set().
  void resume_from(int64_t already);
  void finish();  // prints the final line (total time, mean rate)
  // The text of the current progress line, e.g. "scoring: 120/500 units (24.0%), 3.40 units/s, ETA 1m52s".
  std::string line() const;

 private:
  void maybe_print(bool force);

  std::string what_, unit_;
  int64_t total_ = 0, done_ = 0, already_ = 0;
  ProgressOptions options_;
  Clock clock_;
  double start_ = 0, last_print_ = -1e300;
  bool tty_ = false, finished_ = false;
};

std::string format_duration(double seconds);  // "45s", "3m07s", "2h05m", "3d04h"
std::string format_rate(double per_second);   // three significant digits, k/M suffixes

}  // namespace kmoe

// See progress.h. Rate is the mean since start: units in kmoe stages are similar in cost,
// and a mean gives a steadier ETA than a moving window for the unit counts we see.
#include "runtime/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "runtime/log.h"

namespace kmoe {

namespace {
double steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const auto t = static_cast<long long>(std::llround(s));
  if (t < 60)
    std::snprintf(buf, sizeof buf, "%llds", t);
  else if (t < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  else if (t < 86400)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t % 3600) / 60);
  else
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", t / 86400, (t % 86400) / 3600);
  return buf;
}

std::string format_rate(double r) {
  char buf[32];
  const char* suffix = "";
  if (r >= 1e6) {
    r /= 1e6;
    suffix = "M";
  } else if (r >= 1e3) {
    r /= 1e3;
    suffix = "k";
  }
  const int decimals = r >= 100 ? 0 : r >= 10 ? 1 : 2;
  std::snprintf(buf, sizeof buf, "%.*f%s", decimals, r, suffix);
  return buf;
}

Progress::Progress(std::string what, int64_t total, std::string unit, ProgressOptions options, Clock clock)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      options_(options),
      clock_(clock ? std::move(clock) : Clock(steady_seconds)) {
  start_ = clock_();
  tty_ = isatty(STDERR_FILENO) == 1;
}

Progress::~Progress() {
  if (tty_ && options_.enabled && !finished_ && last_print_ > -1e300) {
    std::fputc('\n', stderr);
    log_set_live_line("");
  }
}

void Progress::advance(int64_t n) {
  set(done_ + n);
}

void Progress::set(int64_t done) {
  done_ = done;
  maybe_print(false);
}

void Progress::resume_from(int64_t already) {
  already_ = already;
  done_ = std::max(done_, already);
}

std::string Progress::line() const {
  const double elapsed = clock_() - start_;
  const double rate = elapsed > 0 ? (done_ - already_) / elapsed : 0.0;
  std::string note;
  if (total_ > 0) {
    char pct[32];
    std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * done_ / total_);
    note = pct;
  }
  if (already_ > 0) note += (note.empty() ? "" : ", ") + std::to_string(already_) + " done before";
  std::string s = what_ + ": " + std::to_string(done_) + "/" + std::to_string(total_) + " " + unit_;
  if (!note.empty()) s += " (" + note + ")";
  s += ", " + format_rate(rate) + " " + unit_ + "/s";
  if (done_ >= total_)
    s += ", done in " + format_duration(elapsed);
  else
    s += ", ETA " + (rate > 0 ? format_duration((total_ - done_) / rate) : std::string("?"));
  return s;
}

void Progress::maybe_print(bool force) {
  if (!options_.enabled) return;
  const double now = clock_();
  const double interval = tty_ ? 0.2 : options_.interval_s;
  if (!force && now - last_print_ < interval) return;
  last_print_ = now;
  const std::string text = line();
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    log_set_live_line(text);
  } else
    std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (finished_) return;
  maybe_print(true);
  if (tty_ && options_.enabled) {
    std::fputc('\n', stderr);
    log_set_live_line("");
  }
  finished_ = true;
}

}  // namespace kmoe

// Logging: rank 0 only by default, every rank (prefixed with its rank) on request, to
// stderr so that stdout stays clean for a subcommand's results (tables, JSON).
#pragma once

#include <sstream>
#include <string>

namespace kmoe {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

struct LogOptions {
  bool all_ranks = false;
  LogLevel level = LogLevel::info;
};

void log_init(int rank, const LogOptions& options);
void log_write(LogLevel level, const std::string& message);
// The line a Progress redraws in place on a terminal ("" when none): log_write clears it
// before writing a message and redraws it after, so a message never lands inside it.
void log_set_live_line(const std::string& text);
// True when this rank prints at this level; lets callers skip formatting work.
bool log_enabled(LogLevel level);
LogLevel log_level_parse(const std::string& name);  // debug|info|warn|error, throws otherwise

template <typename... Args>
void log_info(const Args&... args) {
  if (!log_enabled(LogLevel::info)) return;
  std::ostringstream s;
  (s << ... << args);
  log_write(LogLevel::info, s.str());
}
template <typename... Args>
void log_warn(const Args&... args) {
  if (!log_enabled(LogLevel::warn)) return;
  std::ostringstream s;
  (s << ... << args);
  log_write(LogLevel::warn, s.str());
}
template <typename... Args>
void log_debug(const Args&... args) {
  if (!log_enabled(LogLevel::debug)) return;
  std::ostringstream s;
  (s << ... << args);
  log_write(LogLevel::debug, s.str());
}

}  // namespace kmoe

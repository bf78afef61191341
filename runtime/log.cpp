// See log.h. One line per call, written with a single fwrite so lines from different
// ranks sharing a terminal do not interleave mid-line.
#include "runtime/log.h"

#include <cstdio>
#include <stdexcept>

namespace kmoe {

namespace {
int g_rank = 0;
LogOptions g_options;
std::string g_live_line;  // this process's progress line on a terminal
}  // namespace

void log_set_live_line(const std::string& text) {
  g_live_line = text;
}

void log_init(int rank, const LogOptions& options) {
  g_rank = rank;
  g_options = options;
}

bool log_enabled(LogLevel level) {
  if (level < g_options.level) return false;
  return g_rank == 0 || g_options.all_ranks || level == LogLevel::error;
}

void log_write(LogLevel level, const std::string& message) {
  static const char* names[] = {"debug", "info", "warning", "error"};
  std::string line = "kmoe";
  if (g_options.all_ranks || g_rank != 0) line.append("[").append(std::to_string(g_rank)).append("]");
  if (level != LogLevel::info) line.append(" ").append(names[static_cast<int>(level)]);
  line.append(": ").append(message).append("\n");
  if (!g_live_line.empty()) line = "\r\033[K" + line + g_live_line;  // clear, write, redraw
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

LogLevel log_level_parse(const std::string& name) {
  if (name == "debug") return LogLevel::debug;
  if (name == "info") return LogLevel::info;
  if (name == "warn" || name == "warning") return LogLevel::warn;
  if (name == "error") return LogLevel::error;
  throw std::invalid_argument("unknown log level '" + name + "' (valid: debug, info, warn, error)");
}

}  // namespace kmoe

// See cpu_env.h.
#include "runtime/cpu_env.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace kmoe {

std::set<std::string> cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::set<std::string> flags;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string flag; words >> flag;) flags.insert(flag);
    break;  // the first processor's flags stand for all
  }
  return flags;
}

bool cpu_has_bf16() {
  const auto flags = cpu_flags();
  return flags.count("avx512_bf16") || flags.count("amx_bf16");
}

std::string openblas_core_to_force(const std::string& chosen_core, const std::set<std::string>& flags) {
  auto has = [&](std::initializer_list<const char*> names) {
    return std::all_of(names.begin(), names.end(), [&](const char* f) { return flags.count(f) > 0; });
  };
  if (!has({"avx2", "fma"})) return "";
  std::string core = chosen_core;
  std::transform(core.begin(), core.end(), core.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* fine : {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"})
    if (core == fine) return "";
  if (has({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}))
    return has({"avx512_bf16"}) ? "Cooperlake" : "SkylakeX";
  return "Haswell";
}

std::string openblas_core() {
  using CoreName = char* (*)();
  auto* name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* core = name ? name() : nullptr;
  return core ? std::string(core) : std::string();
}

void cpu_env_reexec(char** argv) {
  const bool spin = std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("GOMP_SPINCOUNT") == nullptr;
  std::string core_was, force;
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    core_was = openblas_core();
    if (!core_was.empty()) force = openblas_core_to_force(core_was, cpu_flags());
  }
  if (!spin && force.empty()) return;
  // The executable's own path, not /proc/self/exe: the process name (comm, what ps, top and
  // pkill show) is the basename of the path executed.
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec || self.empty()) return;
  if (spin) setenv("GOMP_SPINCOUNT", "3000", 1);
  if (!force.empty()) {
    setenv("OPENBLAS_CORETYPE", force.c_str(), 1);
    setenv("KMOE_OPENBLAS_CORE_WAS", core_was.c_str(), 1);
  }
  execv(self.c_str(), argv);  // returns only on failure: run on as loaded
  if (spin) unsetenv("GOMP_SPINCOUNT");
  if (!force.empty()) {
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("KMOE_OPENBLAS_CORE_WAS");
  }
}

}  // namespace kmoe

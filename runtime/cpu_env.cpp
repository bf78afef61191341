// See cpu_env.h.
#include "runtime/cpu_env.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace kmoe {

bool cpu_has_bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::string flag;
    while (words >> flag) {
      if (flag == "avx512_bf16" || flag == "amx_bf16") return true;
    }
    return false;  // the first processor's flags stand for all
  }
  return false;
}

void omp_spin_reexec(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  // The executable's own path, not /proc/self/exe: the process name (comm, what ps, top and
  // pkill show) is the basename of the path executed.
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec || self.empty()) return;
  if (setenv("GOMP_SPINCOUNT", "3000", 1) != 0) return;
  execv(self.c_str(), argv);  // returns only on failure: run on with libgomp's default
  unsetenv("GOMP_SPINCOUNT");
}

}  // namespace kmoe

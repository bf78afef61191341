// runtime/cpu_env: which OpenBLAS core kmoe asks for when OpenBLAS chose kernels below the
// CPU (a hypervisor's unknown CPU model: Prescott's SSE3 kernels on an AVX-512 machine), and
// that it leaves a good choice, or a CPU without AVX2, alone. In this process (no re-exec:
// the test binary is not kmoe) the loaded OpenBLAS's choice is what the rule would keep or
// what OPENBLAS_CORETYPE asked for.
#include "runtime/cpu_env.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>

namespace kmoe {
namespace {

const std::set<std::string> kAvx2 = {"sse3", "avx", "avx2", "fma"};
const std::set<std::string> kAvx512 = {"sse3", "avx", "avx2", "fma", "avx512f", "avx512cd",
                                       "avx512bw", "avx512dq", "avx512vl"};

std::set<std::string> with(std::set<std::string> flags, const std::string& more) {
  flags.insert(more);
  return flags;
}

TEST(CpuEnv, AFallbackCoreOnAnAvx512CpuIsRaisedToItsBestKnownCore) {
  EXPECT_EQ(openblas_core_to_force("Prescott", kAvx512), "SkylakeX");
  EXPECT_EQ(openblas_core_to_force("Prescott", with(kAvx512, "avx512_bf16")), "Cooperlake");
  EXPECT_EQ(openblas_core_to_force("Nehalem", kAvx512), "SkylakeX");
  EXPECT_EQ(openblas_core_to_force("Sandybridge", with(kAvx512, "avx512_bf16")), "Cooperlake");
  // AVX-512 F alone (no BW/DQ/VL: Knights Landing) is not SkylakeX's instruction set.
  EXPECT_EQ(openblas_core_to_force("Prescott", with(kAvx2, "avx512f")), "Haswell");
  EXPECT_EQ(openblas_core_to_force("Prescott", kAvx2), "Haswell");
  EXPECT_EQ(openblas_core_to_force("Core2", kAvx2), "Haswell");
}

TEST(CpuEnv, AnAvx2CoreOrACpuWithoutAvx2IsLeftAlone) {
  for (const char* fine : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "skylakex", "ZEN"}) {
    EXPECT_EQ(openblas_core_to_force(fine, with(kAvx512, "avx512_bf16")), "") << fine;
    EXPECT_EQ(openblas_core_to_force(fine, kAvx2), "") << fine;
  }
  EXPECT_EQ(openblas_core_to_force("Prescott", {"sse3", "avx"}), "");
  EXPECT_EQ(openblas_core_to_force("Prescott", {"sse3", "avx2"}), "");  // no FMA
  EXPECT_EQ(openblas_core_to_force("Prescott", {}), "");                // /proc/cpuinfo unreadable
}

TEST(CpuEnv, TheLoadedOpenBlasRunsKernelsTheRuleKeeps) {
  // OpenBLAS's own choice, or the OPENBLAS_CORETYPE the tests' environment sets where that
  // choice is poor (tests/openblas_env.cmake asks kmoe info): either way, good kernels.
  const std::string core = openblas_core();
  if (core.empty()) GTEST_SKIP() << "no OpenBLAS loaded (libtorch on MKL)";
  const char* asked = std::getenv("OPENBLAS_CORETYPE");
  EXPECT_EQ(openblas_core_to_force(core, cpu_flags()), "")
      << "OpenBLAS runs " << core << " kernels (OPENBLAS_CORETYPE " << (asked ? asked : "unset") << ")";
}

}  // namespace
}  // namespace kmoe

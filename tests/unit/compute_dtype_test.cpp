// model/compute_dtype: auto is bfloat16 on CUDA and float32 on the CPU on every processor;
// explicit choices pass; anything else is refused naming the allowed values; a bf16 choice on
// the CPU warns exactly when /proc/cpuinfo lacks the bf16 instructions.
#include "runtime/compute_dtype.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "runtime/cpu_env.h"

namespace kmoe {
namespace {

TEST(ComputeDtype, AutoIsFloat32OnTheCpuAndBfloat16OnCuda) {
  const ComputeDtype cpu = compute_dtype_resolve("auto", "cpu");
  EXPECT_EQ(cpu.name, "float32");
  EXPECT_EQ(cpu.type, c10::kFloat);
  EXPECT_TRUE(cpu.warning.empty());
  const ComputeDtype cuda = compute_dtype_resolve("auto", "cuda");
  EXPECT_EQ(cuda.name, "bfloat16");
  EXPECT_EQ(cuda.type, c10::kBFloat16);
  EXPECT_TRUE(cuda.warning.empty());
}

TEST(ComputeDtype, ExplicitChoicesPassAndTheWarningFollowsTheCpu) {
  EXPECT_EQ(compute_dtype_resolve("float32", "cuda").type, c10::kFloat);
  const ComputeDtype bf16 = compute_dtype_resolve("bfloat16", "cpu");
  EXPECT_EQ(bf16.type, c10::kBFloat16);
  EXPECT_EQ(bf16.warning.empty(), cpu_has_bf16());
}

TEST(ComputeDtype, OtherValuesAreRefusedNamingTheChoices) {
  for (const char* bad : {"float16", "fp32", "", "BFLOAT16"}) {
    try {
      compute_dtype_resolve(bad, "cpu");
      FAIL() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("must be auto, float32 or bfloat16, not '" + std::string(bad) + "'"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace kmoe

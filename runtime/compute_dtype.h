// The precision a model computes in: --dtype auto|float32|bfloat16 of score, eval, generate,
// panda learn and train, and embed's --compute-dtype. "auto" is bfloat16 on CUDA and float32
// on the CPU: the CPU default stays float32 on every processor, so the same command gives the
// same numbers on any machine; bfloat16 on the CPU is a choice (issue 13), fast where the
// processor has AVX512-BF16 or AMX (oneDNN's bf16 GEMMs) and a slow-down where it has not.
// Weights and activations are bfloat16; norms, softmax, log-probabilities and everything a
// trainer updates (LoRA, routers, soft prompts, optimizer state) stay float32.
#pragma once

#include <c10/core/ScalarType.h>

#include <string>

namespace kmoe {

struct ComputeDtype {
  std::string name = "float32";          // float32 or bfloat16 (never auto)
  c10::ScalarType type = c10::kFloat;    // its libtorch type
  std::string warning;                   // "" or why this choice is slow here (bf16 on a CPU without bf16)
};

// Resolves `requested` (auto, float32 or bfloat16) for `device` ("cpu" or "cuda"). Throws
// std::invalid_argument naming `option` and the allowed values.
ComputeDtype compute_dtype_resolve(const std::string& requested, const std::string& device,
                                   const std::string& option = "--dtype");

}  // namespace kmoe

// See compute_dtype.h.
#include "runtime/compute_dtype.h"

#include <stdexcept>

#include "runtime/cpu_env.h"

namespace kmoe {

ComputeDtype compute_dtype_resolve(const std::string& requested, const std::string& device,
                                   const std::string& option) {
  ComputeDtype d;
  if (requested == "auto") {
    d.name = device == "cuda" ? "bfloat16" : "float32";
  } else if (requested == "float32" || requested == "bfloat16") {
    d.name = requested;
  } else {
    throw std::invalid_argument(option + " must be auto, float32 or bfloat16, not '" + requested + "'");
  }
  d.type = d.name == "bfloat16" ? c10::kBFloat16 : c10::kFloat;
  if (d.name == "bfloat16" && device == "cpu" && !cpu_has_bf16()) {
    d.warning = "bfloat16 on a CPU without AVX512-BF16 or AMX (/proc/cpuinfo): it runs, but slower than float32";
  }
  return d;
}

}  // namespace kmoe

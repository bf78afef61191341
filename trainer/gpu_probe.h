// What this process can use for GPU data parallelism: the CUDA runtime and devices it
// sees, and the NCCL it was linked with. kmoe is built with the CUDA/NCCL code whenever
// the toolkit is present, so "compiled" and "usable" are different questions: on a CPU
// machine the answer is "compiled, 0 devices".
#pragma once

#include <string>
#include <vector>

namespace kmoe {

struct GpuInfo {
  bool cuda_compiled = false;    // built against the CUDA runtime
  int cuda_runtime_version = 0;  // e.g. 13000
  int cuda_driver_version = 0;   // 0 when no driver is installed
  int device_count = 0;
  std::vector<std::string> device_names;
  std::string cuda_error;  // why device_count is 0, if CUDA said
  bool nccl_compiled = false;
  int nccl_version = 0;  // e.g. 22703 for 2.27.3
};

GpuInfo gpu_probe();
std::string nccl_version_string(int code);  // 22703 -> "2.27.3"

}  // namespace kmoe

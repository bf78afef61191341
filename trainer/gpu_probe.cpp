// See gpu_probe.h. Without the toolkit this file still builds and reports "not compiled".
#include "trainer/gpu_probe.h"

#ifdef KMOE_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

namespace kmoe {

GpuInfo gpu_probe() {
  GpuInfo info;
#ifdef KMOE_HAVE_NCCL
  info.cuda_compiled = true;
  info.nccl_compiled = true;
  cudaRuntimeGetVersion(&info.cuda_runtime_version);
  cudaDriverGetVersion(&info.cuda_driver_version);
  const cudaError_t rc = cudaGetDeviceCount(&info.device_count);
  if (rc != cudaSuccess) {
    info.device_count = 0;
    info.cuda_error = cudaGetErrorString(rc);
  }
  for (int d = 0; d < info.device_count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) == cudaSuccess) info.device_names.emplace_back(prop.name);
  }
  ncclGetVersion(&info.nccl_version);
#endif
  return info;
}

std::string nccl_version_string(int code) {
  if (code <= 0) return "none";
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch; older ones major*1000 + minor*100 + patch.
  const int major = code >= 10000 ? code / 10000 : code / 1000;
  const int minor = code >= 10000 ? (code % 10000) / 100 : (code % 1000) / 100;
  const int patch = code % 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

}  // namespace kmoe

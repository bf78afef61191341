// See cpu_threads.h. OpenBLAS is found at run time (dlsym), so a libtorch built on MKL or
// with CUDA only links and runs the same.
#include "model/cpu_threads.h"

#include <dlfcn.h>
#include <torch/torch.h>

namespace kmoe {

void cpu_threads_set(int n) {
  if (n <= 0) return;
  torch::set_num_threads(n);
  using SetThreads = void (*)(int);
  if (auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(n);
}

}  // namespace kmoe

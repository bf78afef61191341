// One thread count for every CPU kernel library kmoe runs on. libtorch's intra-op pool
// (OpenMP) and OpenBLAS's own pthread pool are separate: Debian's libopenblas0-pthread
// sizes its pool from the CPUs the process may run on, which mpirun's core binding changes
// with the number of ranks; a GEMM split over another thread count rounds differently, so
// np = 1 and np = 3 gave NLLs 1e-6 apart. --threads sets both.
#pragma once

namespace kmoe {

// torch::set_num_threads(n), and openblas_set_num_threads(n) when OpenBLAS is loaded.
void cpu_threads_set(int n);

}  // namespace kmoe

// One thread count for every CPU kernel library kmoe runs on. libtorch's intra-op pool
// (OpenMP) and OpenBLAS's own pthread pool are separate: Debian's libopenblas0-pthread
// sizes its pool from the CPUs the process may run on, which mpirun's core binding changes
// with the number of ranks; a GEMM split over another thread count rounds differently, so
// np = 1 and np = 3 gave NLLs 1e-6 apart. --threads sets both.
#pragma once

namespace kmoe {

// torch::set_num_threads(n), and openblas_set_num_threads(n) when OpenBLAS is loaded.
void cpu_threads_set(int n);

// With more than one thread, libtorch's OpenMP threads spin while OpenBLAS's own pthreads run
// a float32 GEMM (and the reverse), and on this 2-core machine two threads ran 2-3x slower
// than one: LoRA SFT on SmolLM2 79 against 160 tokens/s, MiniLM embedding 82 against 139
// sentences/s. OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep) gave 240 tokens/s and 224
// sentences/s. libgomp reads the variable once, when it loads, before main(): so when it is
// unset, this sets it to PASSIVE and executes the program again (same pid, arguments and
// environment otherwise); a user's own OMP_WAIT_POLICY is kept. Returns only when no re-exec
// happened (the variable was set, or execv failed).
void omp_wait_policy_passive_reexec(char** argv);

}  // namespace kmoe

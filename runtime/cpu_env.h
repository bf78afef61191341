// What kmoe reads of the CPU and sets in its own environment for the CPU kernels: whether the
// processor has bf16 instructions, and libgomp's spin before the first thread starts.
#pragma once

namespace kmoe {

// True when /proc/cpuinfo lists avx512_bf16 or amx_bf16 (the instructions oneDNN's bf16
// GEMMs use); false where it cannot be read.
bool cpu_has_bf16();

// With more than one thread, libtorch's OpenMP threads spin while OpenBLAS's own pthreads run
// a float32 GEMM (and the reverse): with libgomp's default spin (300,000 rounds before a
// thread sleeps) two threads on this 2-core machine ran 2-3x slower than one. Measured at
// --threads 2 on SmolLM2-135M and all-MiniLM (GOMP_SPINCOUNT = 0 (passive) / 3,000 / 30,000 /
// 300,000 (default)): fp32 LoRA SFT 194 / 215 / 149 / 69 tokens/s, fp32 embedding 212 / 175 /
// 154 / 73 sentences/s; bf16 (oneDNN, no OpenBLAS) SFT 286 / 319 / 238 / 200 tokens/s, bf16
// embedding 357 / 357 / 390 / 476 sentences/s. 3,000 rounds keep nearly all of the fp32 gain
// and lose a quarter of bf16 embedding speed. libgomp reads the variable once, when it loads,
// before main(): so when neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY is set, this sets
// GOMP_SPINCOUNT=3000 and executes the program again (same pid, arguments and environment
// otherwise); a user's own setting is kept. Returns only when no re-exec happened.
void omp_spin_reexec(char** argv);

}  // namespace kmoe

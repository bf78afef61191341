// What kmoe reads of the CPU and sets in its own environment for the CPU kernels: whether the
// processor has bf16 instructions, libgomp's spin and OpenBLAS's kernels before the first
// thread starts.
#pragma once

#include <set>
#include <string>

namespace kmoe {

// The flags of /proc/cpuinfo's first processor; empty where it cannot be read.
std::set<std::string> cpu_flags();

// True when /proc/cpuinfo lists avx512_bf16 or amx_bf16 (the instructions oneDNN's bf16
// GEMMs use); false where it cannot be read.
bool cpu_has_bf16();

// OpenBLAS (DYNAMIC_ARCH, as Debian builds it) picks its kernels from the CPU's model number
// when it loads. Under a hypervisor that reports a model OpenBLAS does not know (seen here: an
// "Intel(R) Xeon(R) Processor" with AVX-512, AMX and avx512_bf16), 0.3.21 falls back to its
// Prescott (SSE3) kernels: float32 GEMM at 14 GFLOP/s on one thread instead of 105, every
// training, scoring and embedding step about 4x slower. The OpenBLAS core to ask for instead
// (its OPENBLAS_CORETYPE name), given the core it chose (openblas_get_corename()) and the
// CPU's flags: "" when the chosen core already uses AVX2 (Haswell, Zen, SkylakeX, Cooperlake,
// SapphireRapids, whatever the CPU), or when the CPU has no AVX2 + FMA; else "Cooperlake"
// (AVX-512 with avx512_bf16), "SkylakeX" (AVX-512 F/CD/BW/DQ/VL) or "Haswell" (AVX2 + FMA).
std::string openblas_core_to_force(const std::string& chosen_core, const std::set<std::string>& flags);

// The core the loaded OpenBLAS chose ("" when OpenBLAS is not loaded: a libtorch on MKL).
std::string openblas_core();

// libgomp and OpenBLAS read their variables once, when they load, before main(): so this
// sets what they should read and executes the program again (same pid, arguments and
// environment otherwise) when either needs it. A user's own setting is kept. Returns only
// when no re-exec happened.
// - With more than one thread, libtorch's OpenMP threads spin while OpenBLAS's own pthreads
//   run a float32 GEMM (and the reverse): with libgomp's default spin (300,000 rounds before
//   a thread sleeps) two threads on a 2-core machine ran 2-3x slower than one. Measured at
//   --threads 2 on SmolLM2-135M and all-MiniLM (GOMP_SPINCOUNT = 0 (passive) / 3,000 / 30,000
//   / 300,000 (default)): fp32 LoRA SFT 194 / 215 / 149 / 69 tokens/s, fp32 embedding 212 /
//   175 / 154 / 73 sentences/s; bf16 (oneDNN, no OpenBLAS) SFT 286 / 319 / 238 / 200
//   tokens/s, bf16 embedding 357 / 357 / 390 / 476 sentences/s. 3,000 rounds keep nearly all
//   of the fp32 gain and lose a quarter of bf16 embedding speed. So when neither
//   GOMP_SPINCOUNT nor OMP_WAIT_POLICY is set, GOMP_SPINCOUNT=3000.
// - When OPENBLAS_CORETYPE is unset and openblas_core_to_force() names a core,
//   OPENBLAS_CORETYPE=that core (KMOE_OPENBLAS_CORE_WAS=the core OpenBLAS had chosen, which
//   `kmoe info` reports).
void cpu_env_reexec(char** argv);

}  // namespace kmoe

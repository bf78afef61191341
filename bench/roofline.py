# Roofline helpers for the bench scripts: the machine's measured GEMM peak (torch matmul in
# this process, the thread count the benchmark uses) and the FLOPs of a LLaMA forward, so
# each benchmark can print the GFLOP/s it achieved and the fraction of that peak.
#   python bench/roofline.py peak THREADS          -> "fp32 GFLOP/s  bf16 GFLOP/s"
import sys
import time

import torch


def gemm_peak(dtype, threads, n=2048, reps=6):
    """GFLOP/s of an n x n x n product in `dtype` (best of `reps`), `threads` threads, through
    F.linear as the models call it (bf16 goes to oneDNN). OpenBLAS (fp32) sizes its own pool
    from OMP_NUM_THREADS when it loads: the bench scripts export it."""
    torch.set_num_threads(threads)
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.nn.functional.linear(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.nn.functional.linear(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def forward_flops(hidden, intermediate, layers, heads, kv_heads, vocab, new_tokens, context):
    """FLOPs of one LLaMA forward over `new_tokens` tokens that attend to `context` keys on
    average: 2 per multiply-add of every projection and the LM head, plus QK^T and PV."""
    head_dim = hidden // heads
    proj = hidden * (heads * head_dim) * 2 + hidden * (kv_heads * head_dim) * 2 + 3 * hidden * intermediate
    per_token = 2 * (layers * proj + hidden * vocab) + layers * 4 * heads * head_dim * context
    return per_token * new_tokens


if __name__ == "__main__":
    if sys.argv[1] == "peak":
        th = int(sys.argv[2])
        print("%.1f %.1f" % (gemm_peak(torch.float32, th), gemm_peak(torch.bfloat16, th)))

# Sourced by the benches that time a Python peer (torch, numpy) or a bench binary beside kmoe,
# with the kmoe binary as $1: every side runs the OpenBLAS kernels kmoe runs. Where OpenBLAS's
# own choice is poor (a hypervisor's CPU model it does not know: SSE3 kernels on an AVX-512
# machine, 7x slower GEMMs), kmoe re-executes itself with a better OPENBLAS_CORETYPE
# (runtime/cpu_env.h); exporting the same here keeps the ratios about code, not kernels.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  blas_core=$("$1" info --json 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["cpu"]["openblas_coretype"])') || blas_core=unset
  [ "$blas_core" = unset ] || export OPENBLAS_CORETYPE=$blas_core
  echo "OpenBLAS kernels for every side: ${OPENBLAS_CORETYPE:-as OpenBLAS detects them}"
fi

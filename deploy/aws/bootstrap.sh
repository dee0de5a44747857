#!/usr/bin/env bash
# Prepares a GPU training box (Ubuntu with the NVIDIA driver and CUDA, e.g. AWS's Deep Learning
# Base AMI): builds darknet with CUDA/cuDNN and installs model-tools in a venv. Idempotent.
# Run as root from a checkout of this project:  sudo DARKNET_REPO=... deploy/aws/bootstrap.sh
#   DARKNET_REPO  darknet fork to build (default AlexeyAB; hank-ai builds with cmake instead)
#   DARKNET_DIR   where to build it (default /opt/darknet)
#   VENV          model-tools virtual environment (default /opt/edge-vision-venv)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DARKNET_REPO="${DARKNET_REPO:-https://github.com/AlexeyAB/darknet.git}"
DARKNET_DIR="${DARKNET_DIR:-/opt/darknet}"
VENV="${VENV:-/opt/edge-vision-venv}"

[ "$(id -u)" -eq 0 ] || { echo "bootstrap.sh: run as root" >&2; exit 1; }
command -v nvidia-smi >/dev/null || echo "warning: nvidia-smi not found: is this a GPU AMI with the driver?" >&2
NVCC="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
[ -n "$NVCC" ] || { echo "bootstrap.sh: CUDA (nvcc) not found; use a Deep Learning AMI" >&2; exit 1; }
PATH="$(dirname "$NVCC"):$PATH"
export PATH

echo "==> packages"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q build-essential cmake git python3-venv python3-dev

echo "==> darknet from $DARKNET_REPO"
if [ ! -d "$DARKNET_DIR/.git" ]; then
  git clone --depth 1 "$DARKNET_REPO" "$DARKNET_DIR"
fi
cd "$DARKNET_DIR"
if [ -f Makefile ] && grep -q '^GPU=' Makefile; then
  # AlexeyAB: switch the Makefile's flags on. OPENCV=0: darknet then reads images with stb_image,
  # as `model-tools evaluate --mode reference` does by default (--decoder stb)
  sed -i -e 's/^GPU=.*/GPU=1/' -e 's/^CUDNN=.*/CUDNN=1/' -e 's/^CUDNN_HALF=.*/CUDNN_HALF=1/' \
         -e 's/^OPENCV=.*/OPENCV=0/' -e 's/^AVX=.*/AVX=1/' -e 's/^OPENMP=.*/OPENMP=1/' Makefile
  make -j"$(nproc)"
  install -m 0755 darknet /usr/local/bin/darknet
else
  # hank-ai and other CMake-based forks (hank-ai reads images with OpenCV: evaluate --decoder opencv)
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
  cmake --build build -j"$(nproc)"
  install -m 0755 "$(find build -maxdepth 2 -type f -name darknet -perm -u+x | head -n1)" /usr/local/bin/darknet
fi

echo "==> model-tools in $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "${REPO}[train]"
ln -sf "$VENV/bin/model-tools" /usr/local/bin/model-tools

echo "==> check"
darknet 2>&1 | head -n 1 || true
model-tools --help >/dev/null
echo "ready: model-tools pipeline WORKDIR --flickr27 ANNOTATIONS --images DIR --train-head region ..."

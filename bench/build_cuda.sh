#!/usr/bin/env bash
# Builds the GPU proof (tests/examples/cuda_check.rs) with the `cuda` feature on a machine with
# no CUDA toolkit and no GPU, from PyPI's CUDA 13.0 compiler packages, for an H100 (sm_90).
# The CUDA libraries are only link stubs here; the real ones are found at run time on the GPU
# machine (PyTorch's nvidia/cu13/lib). Output: gpu-model/cuda_check.xz (carry gpu-model/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=/opt/cuda13
if [ ! -x /opt/cuda/nvvm/bin/cicc ]; then
    python3 -m pip install -q --no-deps --target "$ROOT" nvidia-cuda-nvcc==13.0.88 'nvidia-cuda-runtime==13.0.*' 'nvidia-cuda-cccl==13.0.*'
    python3 -m pip download -q --no-deps -d /tmp/nvvm 'nvidia-nvvm==13.0.*'
    python3 -c 'import glob, zipfile; zipfile.ZipFile(glob.glob("/tmp/nvvm/*.whl")[0]).extractall("/tmp/nvvm/x")'
    cp -r /tmp/nvvm/x/nvidia/cu13/* "$ROOT/nvidia/cu13/"
    mkdir -p /opt/cuda
    for d in bin include nvvm; do ln -sfn "$ROOT/nvidia/cu13/$d" "/opt/cuda/$d"; done
    ln -sfn "$ROOT/nvidia/cu13/lib" /opt/cuda/lib; ln -sfn "$ROOT/nvidia/cu13/lib" /opt/cuda/lib64
fi
S=/opt/cudastub
mkdir -p "$S"; : > "$S/e.c"
for p in cuda:libcuda.so.1 nvrtc:libnvrtc.so.13 curand:libcurand.so.10 cublas:libcublas.so.13 cublasLt:libcublasLt.so.13; do
    gcc -shared -fPIC -o "$S/lib${p%%:*}.so" "$S/e.c" -Wl,-soname,"${p#*:}"
done
ln -sf /opt/cuda/lib/libcudart.so.13 "$S/libcudart.so"
export PATH=/opt/cuda/bin:$PATH CUDA_ROOT=/opt/cuda CUDA_PATH=/opt/cuda CUDA_COMPUTE_CAP=90
export CARGO_TARGET_DIR="${CUDA_TARGET_DIR:-/var/tmp/wst-cuda-target}"
cargo rustc --release -p wst-tests --example cuda_check --features cuda -- -L "$S" \
    -C link-arg=-Wl,--unresolved-symbols=ignore-all -C link-arg=-Wl,--no-as-needed \
    -C link-arg=$S/libcuda.so -C link-arg=$S/libnvrtc.so -C link-arg=$S/libcurand.so \
    -C link-arg=$S/libcublas.so -C link-arg=$S/libcublasLt.so
mkdir -p gpu-model
strip -o gpu-model/cuda_check "$CARGO_TARGET_DIR/release/examples/cuda_check"
xz -T2 -6 -f gpu-model/cuda_check
echo "built gpu-model/cuda_check.xz; also put a checkpoint folder in gpu-model/model"

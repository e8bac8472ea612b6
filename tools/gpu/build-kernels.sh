#!/usr/bin/env bash
# Compiles Ember's CUDA kernels (src/main/cuda/*.cu) into one fatbin each, with machine code for
# sm_80 (run by sm_86 and sm_89 too) and sm_90 and PTX for compute_90 (which newer GPUs JIT-compile), into OUT_DIR.
# Maven runs this in generate-resources (see pom.xml), so the fatbins land in the jar as resources.
# Without nvcc it says so and succeeds: the build goes on and the CUDA backend reports itself unavailable.
# Usage: build-kernels.sh SRC_DIR OUT_DIR
set -euo pipefail
src="${1:?usage: build-kernels.sh SRC_DIR OUT_DIR}"
out="${2:?usage: build-kernels.sh SRC_DIR OUT_DIR}"

nvcc=""
for candidate in "${NVCC:-}" "$(command -v nvcc 2>/dev/null || true)" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" /usr/local/cuda/bin/nvcc; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then nvcc="$candidate"; break; fi
done
if [ -z "$nvcc" ]; then
  echo "[ember] nvcc not found (looked at \$NVCC, PATH, \$CUDA_HOME/bin, /usr/local/cuda/bin): building without CUDA kernels; the CUDA backend will report itself unavailable"
  exit 0
fi

mkdir -p "$out"
# Machine code for sm_80 (which sm_86 and sm_89 run too: one major version) and sm_90, and PTX for compute_90 that
# newer GPUs compile at load.
gencode=(-gencode arch=compute_80,code=sm_80 -gencode 'arch=compute_90,code=[sm_90,compute_90]')
built=0
for cu in "$src"/*.cu; do
  name="$(basename "$cu" .cu)"
  fatbin="$out/$name.fatbin"
  # Rebuild only when the kernel or a header it may include changed: nvcc takes a while per file.
  if [ -f "$fatbin" ] && [ -z "$(find "$cu" "$src" -maxdepth 1 \( -name "$(basename "$cu")" -o -name '*.cuh' \) -newer "$fatbin" -print -quit)" ]; then
    continue
  fi
  "$nvcc" -fatbin -O3 -std=c++17 --threads 0 "${gencode[@]}" -o "$fatbin.tmp" "$cu"
  mv "$fatbin.tmp" "$fatbin"
  built=$((built + 1))
done
# A fatbin whose source is gone (a kernel deleted or renamed) would otherwise ride along in the jar.
for fatbin in "$out"/*.fatbin; do
  if [ -f "$fatbin" ] && [ ! -f "$src/$(basename "$fatbin" .fatbin).cu" ]; then rm -f "$fatbin"; fi
done
echo "[ember] CUDA kernels: $built rebuilt with $("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), fatbins in $out"

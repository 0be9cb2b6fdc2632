#!/usr/bin/env bash
# Optional: builds oneDNN 3.7.2 (Debian 13's source package, fetched from Debian's archive) into native/deps/onednn/
# for machines whose system oneDNN is 2.x, e.g. to try 3.x's kernels (brgemm matmul on AVX2, newer AVX-512/AMX
# code). On the development machine (AVX2) whole models ran even with the default 2.6.3 + OpenBLAS path (README,
# native section), so the default install does not build it. A static library with only the primitives the addon
# uses: the addon carries it and nothing is installed system-wide. About 30 minutes on 2 cores;
# `npm run build:native` afterwards links it (delete native/deps/onednn to go back to the system's oneDNN).
#   scripts/build-onednn.sh            (npm run build:onednn)
# Needs: cmake, ninja-build (or make), g++, curl, xz-utils. SIGLIP2_ONEDNN_TARBALL=<path> builds from a
# tarball already downloaded (the same file, checked against the same SHA-256).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/onednn-source.sh
prefix="$PWD/native/deps/onednn"
if [[ -f "$prefix/.built-$onednn_version" ]]; then
  echo "oneDNN $onednn_version already built in native/deps/onednn"
  exit 0
fi
for tool in cmake g++ curl xz; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-onednn: '$tool' is missing: apt-get install cmake ninja-build g++ curl xz-utils" >&2
    exit 1
  fi
done
work="$PWD/native/deps/onednn-build"
rm -rf "$work/build"
onednn_source "$work/src"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# Only the primitives the addon creates (dnnl_context.cc, eltwise.cc, softmax.cc, transpose.cc), no graph API,
# tests or examples; OpenMP threads, as the addon's own kernels and OpenBLAS use. VTune's hooks are off (their
# assembly would ask the addon for an executable stack).
cmake -S "$work/src" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DDNNL_LIBRARY_TYPE=STATIC -DDNNL_CPU_RUNTIME=OMP \
  -DDNNL_ENABLE_PRIMITIVE="MATMUL;REORDER;SOFTMAX;ELTWISE" "${onednn_cmake_lean[@]}" \
  -DDNNL_ENABLE_JIT_PROFILING=OFF -DDNNL_ENABLE_ITT_TASKS=OFF \
  -DCMAKE_INSTALL_PREFIX="$prefix" >"$work/cmake.log"
cmake --build "$work/build" --parallel "$(nproc)"
rm -rf "$prefix"
cmake --install "$work/build" >/dev/null
touch "$prefix/.built-$onednn_version"
rm -rf "$work/src" "$work/build"
echo "oneDNN $onednn_version built in native/deps/onednn; run npm run build:native to link it"

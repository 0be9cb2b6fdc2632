#!/usr/bin/env bash
# Builds and runs gemm_libraries.cc with every GEMM library whose development package is installed here.
#   npm run bench:gemm-libs [-- --model base|so400m] [--rounds 10]
# The libraries: apt-get install libopenblas-dev (required) libblis-dev libeigen3-dev libxsmm-dev libxnnpack-dev;
# oneDNN 3.x's brgemm from SIGLIP2_ONEDNN_PREFIX or native/deps/onednn (npm run build:onednn).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${TMPDIR:-/tmp}/siglip2-gemm-libraries"
flags=(-O3 -march=native -fopenmp -std=c++17)
libs=(-lopenblas)
missing=()
if [ ! -e /usr/include/x86_64-linux-gnu/cblas.h ] && [ ! -e /usr/include/cblas.h ]; then
  echo "gemm_libraries: OpenBLAS is missing: apt-get install libopenblas-dev" >&2
  exit 1
fi
blis_header="$(ls /usr/include/blis/blis.h /usr/include/*/blis-*/blis.h 2>/dev/null | head -1 || true)"
if [ -n "$blis_header" ]; then flags+=(-DHAVE_BLIS "-DBLIS_HEADER=\"$blis_header\""); libs+=(-lblis); else missing+=(libblis-dev); fi
if [ -e /usr/include/eigen3/Eigen/Dense ]; then flags+=(-DHAVE_EIGEN -I/usr/include/eigen3); else missing+=(libeigen3-dev); fi
if [ -e /usr/include/libxsmm.h ] && [ -e /usr/lib/libxsmm.a ]; then
  flags+=(-DHAVE_LIBXSMM)
  libs+=(/usr/lib/libxsmm.a /usr/lib/libxsmmnoblas.a -ldl)
else missing+=(libxsmm-dev); fi
if [ -e /usr/include/xnnpack.h ]; then flags+=(-DHAVE_XNNPACK); libs+=(-lXNNPACK -lpthreadpool); else missing+=(libxnnpack-dev); fi
onednn3="${SIGLIP2_ONEDNN_PREFIX:-$here/../../native/deps/onednn}"
if [ -e "$onednn3/lib/libdnnl.a" ]; then
  flags+=(-DHAVE_ONEDNN3 "-I$onednn3/include")
  libs+=("$onednn3/lib/libdnnl.a")
else missing+=("oneDNN 3.x (npm run build:onednn)"); fi
if [ ${#missing[@]} -gt 0 ]; then echo "left out (not installed): ${missing[*]}"; fi
g++ "${flags[@]}" "$here/gemm_libraries.cc" -o "$out" "${libs[@]}" -lpthread -lm
lscpu | sed -n 's/^Model name: *//p' | head -1
"$out" "$@"

#!/usr/bin/env bash
# Compiles every native/ source against oneDNN 3.7.2's headers (-fsyntax-only): the addon must build against
# oneDNN 3.x (Homebrew's onednn, Debian 13, scripts/build-onednn.sh) as well as the 2.6.3 it links on Debian 12,
# and CI links only the latter. About a minute; .ci/run runs it. Needs curl, xz-utils, cmake and g++.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/onednn-source.sh
work="${TMPDIR:-/tmp}/siglip2-onednn3-headers"
onednn_source "$work/src"
# configuring generates the headers the sources include (dnnl_config.h, dnnl_version.h); nothing is compiled
cmake -S "$work/src" -B "$work/build" "${onednn_cmake_lean[@]}" >"$work/cmake.log" 2>&1
node_include="$(dirname "$(dirname "$(command -v node)")")/include/node"
for dir in "$node_include" /usr/include/node /usr/local/include/node; do
  [[ -f "$dir/node_api.h" ]] && node_include=$dir && break
done
for f in native/src/*.cc; do
  g++ -std=c++17 -fsyntax-only -fopenmp -Wall -Wextra -DNAPI_VERSION=8 -I"$work/src/include" \
    -I"$work/build/include" -I"$node_include" "$f"
done
echo "check-onednn3: native/src compiles against oneDNN $onednn_version's headers"

#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian/Ubuntu machine (as root): Chromium for the browser tests,
# the compiler, oneDNN and OpenBLAS for the native backend (and cmake, curl and xz for CI's check against oneDNN
# 3.x's headers), the npm packages (npm ci also builds native/), and Mesa 25 lavapipe into .vulkan/ for the WebGPU
# tests. Fails when the native backend did not build.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
for p in g++ make libdnnl-dev libopenblas-dev cmake curl xz-utils; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]} > 0)); then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
npm ci --no-audit --no-fund
# npm ci builds the addon (the package's install script) but only warns when it cannot: here that is a failure.
if [[ ! -f native/build/Release/siglip2_native.node ]]; then
  echo "the native backend did not build during npm ci; building it again to show why:" >&2
  npm run build:native
fi
scripts/setup-vulkan.sh

#!/usr/bin/env bash
# Sourced by build-onednn.sh and check-onednn3.sh: onednn_source <dir> fetches oneDNN 3.7.2's source (Debian 13's
# source package, from Debian's archive; SIGLIP2_ONEDNN_TARBALL=<path> uses a tarball already downloaded), checks
# its SHA-256 against the one Debian published and unpacks it into <dir>.
onednn_version=3.7.2
onednn_tarball_name="onednn_${onednn_version}+ds.orig.tar.xz"
onednn_url="http://deb.debian.org/debian/pool/main/o/onednn/${onednn_tarball_name}"
# From Debian's onednn_3.7.2+ds-2.dsc (Checksums-Sha256).
onednn_sha256=0cc51ca26c1af6a2bb1e71e378e7046f3ceb3e71791ee9d4e246d50f904a6ea6
# What neither script wants configured: the graph API, tests, examples, documentation.
onednn_cmake_lean=(-DONEDNN_BUILD_GRAPH=OFF -DDNNL_BUILD_TESTS=OFF -DDNNL_BUILD_EXAMPLES=OFF -DDNNL_BUILD_DOC=OFF)

onednn_source() {
  local dir=$1 cache tarball
  cache="$(dirname "$dir")"
  mkdir -p "$cache"
  tarball="${SIGLIP2_ONEDNN_TARBALL:-$cache/$onednn_tarball_name}"
  if [[ ! -f "$tarball" ]]; then
    echo "downloading $onednn_url"
    curl -fsSL --retry 3 -o "$tarball.part" "$onednn_url"
    mv "$tarball.part" "$tarball"
  fi
  if ! echo "$onednn_sha256  $tarball" | sha256sum -c --quiet -; then
    echo "onednn-source: $tarball does not have the SHA-256 Debian published ($onednn_sha256)" >&2
    return 1
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  tar -xJf "$tarball" -C "$dir" --strip-components=1
}

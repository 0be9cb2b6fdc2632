#!/usr/bin/env bash
# Provides Mesa's lavapipe (software Vulkan, Mesa 25 from Debian bookworm-backports) in a project-local folder,
# so that WebGPU through Dawn (npm `webgpu`) finds an adapter on a machine without a GPU.
#
# Nothing on the system is changed: packages are fetched with `apt-get download` using a private apt state
# directory and unpacked with `dpkg-deb -x` into $VULKAN_DIR (default: <repo>/.vulkan). Debian 12's own lavapipe
# (Mesa 22.3) gives Dawn no adapter, hence backports. The mirror host is read from the system's apt sources.
#
# Usage: scripts/setup-vulkan.sh [--force]     (idempotent: exits early when the ICD file is already there)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VULKAN_DIR="${VULKAN_DIR:-$ROOT/.vulkan}"
ICD="$VULKAN_DIR/icd.json"

if [[ "${1:-}" != "--force" && -f "$ICD" && -f "$VULKAN_DIR/libdir" && -f "$(cat "$VULKAN_DIR/libdir")/libvulkan_lvp.so" ]]; then
  echo "setup-vulkan: already set up in $VULKAN_DIR"
  exit 0
fi

SOURCES=/etc/apt/sources.list.d/debian.sources
# First URIs entry of the main archive (not debian-security), e.g. http://deb.debian.org/debian
MIRROR="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$SOURCES" 2>/dev/null || true)"
if [[ -z "$MIRROR" && -f /etc/apt/sources.list ]]; then
  MIRROR="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)"
fi
if [[ -z "$MIRROR" ]]; then
  echo "setup-vulkan: could not read a Debian mirror from $SOURCES" >&2
  exit 1
fi
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
echo "setup-vulkan: mirror $MIRROR, target $VULKAN_DIR"

APT="$VULKAN_DIR/apt"
rm -rf "$APT" "$VULKAN_DIR/root" "$VULKAN_DIR/debs"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/sourceparts" "$VULKAN_DIR/debs" "$VULKAN_DIR/root"
cat > "$APT/sources.list" <<SRC
deb [signed-by=$KEYRING] $MIRROR bookworm main
deb [signed-by=$KEYRING] $MIRROR bookworm-updates main
deb [signed-by=$KEYRING] $MIRROR bookworm-backports main
SRC
APT_OPTS=(
  -o "Dir::State::Lists=$APT/lists"
  -o "Dir::Cache=$APT/cache"
  -o "Dir::Etc::SourceList=$APT/sources.list"
  -o "Dir::Etc::SourceParts=$APT/sourceparts"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
apt-get "${APT_OPTS[@]}" -qq update

# Ask apt which packages installing the backports drivers would bring in or upgrade, judged against the system's
# dpkg status (read only), and fetch exactly those.
PKGS=(mesa-vulkan-drivers libvulkan1)
mapfile -t NEEDED < <(apt-get "${APT_OPTS[@]}" -s -t bookworm-backports install --no-install-recommends "${PKGS[@]}" \
  | awk '/^Inst / { for (i = 3; i <= NF; i++) if ($i ~ /^\(/) { v = substr($i, 2); print $2 "=" v; break } }')
if [[ ${#NEEDED[@]} -eq 0 ]]; then
  echo "setup-vulkan: apt found nothing to fetch for ${PKGS[*]}" >&2
  exit 1
fi
echo "setup-vulkan: fetching ${NEEDED[*]}"
(cd "$VULKAN_DIR/debs" && apt-get "${APT_OPTS[@]}" -qq download "${NEEDED[@]}")
for deb in "$VULKAN_DIR"/debs/*.deb; do
  dpkg-deb -x "$deb" "$VULKAN_DIR/root"
done

LIBDIR="$(dirname "$(find "$VULKAN_DIR/root" -name 'libvulkan_lvp.so' | head -n 1)")"
SRC_ICD="$(find "$VULKAN_DIR/root/usr/share/vulkan/icd.d" -name 'lvp_icd*.json' | head -n 1)"
if [[ -z "$LIBDIR" || -z "$SRC_ICD" ]]; then
  echo "setup-vulkan: lavapipe (libvulkan_lvp.so / lvp_icd*.json) not found in the fetched packages" >&2
  exit 1
fi
# The packaged ICD names the driver by its system path; point it at the unpacked copy instead.
sed -E "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$LIBDIR/libvulkan_lvp.so\"#" "$SRC_ICD" > "$ICD"
echo "$LIBDIR" > "$VULKAN_DIR/libdir"
rm -rf "$APT/lists" "$APT/cache" "$VULKAN_DIR/debs"
echo "setup-vulkan: lavapipe ready (ICD $ICD, libraries $LIBDIR)"

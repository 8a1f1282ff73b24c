#!/usr/bin/env bash
# Install the prebuilt OHIF viewer for `pneumolens serve` (docs/service.md):
#
#   scripts/setup_ohif.sh [DEST]        (default DEST: .cache/ohif, ignored by git)
#
# `npm install @ohif/app` does not work (an unpublished dependency version), but the package's
# tarball holds a prebuilt viewer in package/dist/. The tarball is fetched once with `npm pack`
# into a cache ($PNEUMOLENS_CACHE, default ~/.cache/pneumolens), checked against its known
# SHA-1, unpacked into DEST and configured (app-config.js: studies through the service's
# same-origin /dicom-web proxy). Without npm it warns and exits 0, unless
# PNEUMOLENS_REQUIRE_SERVICES=1 (CI), where it fails.
set -euo pipefail
VERSION=3.13.2
SHA1=26a51ffcc1704c30fff403258a1d7392e9a991f3
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/.cache/ohif}
cache=${PNEUMOLENS_CACHE:-$HOME/.cache/pneumolens}
tarball=$cache/ohif-app-$VERSION.tgz
config=$repo/src/pneumolens/service/static/ohif-app-config.js

if [ -f "$dest/.version" ] && [ "$(cat "$dest/.version")" = "$VERSION" ]; then
  cp "$config" "$dest/app-config.js"
  exit 0
fi
if [ ! -f "$tarball" ]; then
  if ! command -v npm >/dev/null; then
    echo "setup_ohif: npm is not installed (apt-get install npm); the OHIF viewer is not set up" >&2
    [ "${PNEUMOLENS_REQUIRE_SERVICES:-0}" = 1 ] && exit 1
    exit 0
  fi
  mkdir -p "$cache"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "setup_ohif: fetching @ohif/app@$VERSION (about 50 MB, once)" >&2
  (cd "$work" && npm pack "@ohif/app@$VERSION" --silent >/dev/null)
  mv "$work/ohif-app-$VERSION.tgz" "$tarball.part"
  mv "$tarball.part" "$tarball"
fi
echo "$SHA1  $tarball" | sha1sum -c --quiet - || { echo "setup_ohif: $tarball does not match its SHA-1; delete it and rerun" >&2; exit 1; }
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
tar -xzf "$tarball" -C "$dest.tmp" --strip-components=2 package/dist
cp "$config" "$dest.tmp/app-config.js"
echo "$VERSION" > "$dest.tmp/.version"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "setup_ohif: OHIF $VERSION in $dest" >&2

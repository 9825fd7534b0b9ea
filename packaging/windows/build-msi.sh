#!/bin/sh
# The Windows agent's MSI from the .exe cross/build.sh leaves in dist/:
#
#   packaging/windows/build-msi.sh
#
# Output: dist/x86_64-pc-windows-gnu/honeybee-agent-<version>.msi, holding
# honeybee-agent.exe (to C:\Program Files\HoneyBee), configs/agent-windows.toml
# (as C:\ProgramData\HoneyBee\agent.toml), the HoneyBeeAgent service and the
# `service prepare` / `service cleanup` custom actions (honeybee-agent.wxs).
# Needs wixl (Debian: apt-get install wixl); no network. HONEYBEE_DIST_DIR
# reads another dist folder.
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DIST=${HONEYBEE_DIST_DIR:-$ROOT/dist}
T=x86_64-pc-windows-gnu
EXE="$DIST/$T/honeybee-agent.exe"
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
[ -n "$VERSION" ] || { echo "build-msi: no version in Cargo.toml" >&2; exit 1; }
command -v wixl >/dev/null || { echo "build-msi: wixl is missing (Debian: apt-get install wixl)" >&2; exit 1; }
[ -f "$EXE" ] || { echo "build-msi: $EXE is missing (cross/build.sh $T)" >&2; exit 1; }
OUT="$DIST/$T/honeybee-agent-$VERSION.msi"

# wixl takes Source paths relative to the current folder only.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$EXE" "$WORK/honeybee-agent.exe"
cp configs/agent-windows.toml "$WORK/agent.toml"
cp packaging/windows/honeybee-agent.wxs "$WORK/"
# MSI versions are three numbers; a pre-release suffix (0.2.0-rc1) is dropped.
MSI_VERSION=${VERSION%%-*}
(cd "$WORK" && wixl -a x64 -D "Version=$MSI_VERSION" -o honeybee-agent.msi honeybee-agent.wxs)
mv "$WORK/honeybee-agent.msi" "$OUT"
echo "build-msi: $OUT $(stat -c %s "$OUT") bytes"

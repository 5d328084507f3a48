#!/usr/bin/env bash
# Installs pinned Go tools into one directory of the tool cache outside the clone, so
# that fresh clones (CI) reuse them. Usage: install-go-tools.sh DEST PKG@VERSION...
#   DEST is a directory whose name carries the versions (a bump names a new directory,
#   and so reinstalls), e.g. ~/.cache/kite/bin/golangci-lint-v2.15.0-go1.26.
# A no-op when DEST is complete. The tools are built into a temporary directory that is
# moved into place at the end, so an interrupted install never leaves a half-filled DEST.
set -euo pipefail

dest=${1:?usage: $0 DEST PKG@VERSION...}
shift
[ $# -gt 0 ] || { echo "usage: $0 DEST PKG@VERSION..." >&2; exit 2; }

if [ -f "$dest/.complete" ]; then
  exit 0
fi

dir=$(dirname "$dest")
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "installing $* into $dest (first run only; a few minutes)…"
start=$SECONDS
# Outside the module, so that Kite's go.mod plays no part in resolving the tools. One
# `go install` per tool: with versions, one command takes packages of one module only.
for pkg in "$@"; do
  (cd "$tmp" && GOBIN="$tmp/bin" "${GO:-go}" install "$pkg")
done
touch "$tmp/bin/.complete"
rm -rf "$dest"
mv -f "$tmp/bin" "$dest"
echo "installed in $((SECONDS - start))s"

#!/usr/bin/env bash
# Installs the pinned golangci-lint into the tool cache outside the clone, so that fresh
# clones (CI) reuse it. Usage: install-golangci-lint.sh VERSION DEST
#   DEST is the versioned binary path, e.g. ~/.cache/kite/bin/golangci-lint-v2.15.0-go1.26.
# A no-op when DEST exists. The build goes to a temporary GOBIN and is moved into place at
# the end, so an interrupted install never leaves a half-written binary under DEST's name.
set -euo pipefail

version=${1:?usage: $0 VERSION DEST}
dest=${2:?usage: $0 VERSION DEST}

if [ -x "$dest" ]; then
  exit 0
fi

dir=$(dirname "$dest")
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "installing golangci-lint $version (first run only, ~3 min)…"
start=$SECONDS
# Run outside the module so that Kite's go.mod plays no part in resolving the tool.
(cd "$tmp" && GOBIN="$tmp" "${GO:-go}" install \
  "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version")
mv -f "$tmp/golangci-lint" "$dest"
echo "installed $dest in $((SECONDS - start))s"

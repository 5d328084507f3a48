#!/usr/bin/env bash
# Installs the pinned protobuf tools (buf, protoc-gen-go, protoc-gen-go-grpc) into one
# directory of the tool cache outside the clone, so that fresh clones (CI) reuse them.
# Usage: install-tools.sh BUF_VERSION PROTOC_GEN_GO_VERSION PROTOC_GEN_GO_GRPC_VERSION DEST
#   DEST is a directory whose name carries the versions, e.g.
#   ~/.cache/kite/bin/proto-buf-v1.75.0-go-v1.36.11-grpc-v1.6.2; a version bump names a
#   new directory and so reinstalls. The plugins keep their standard names inside it, so
#   buf.gen.yaml finds them as `local: protoc-gen-go` with DEST first on PATH.
# A no-op when DEST exists. The build goes to a temporary directory that is moved into
# place at the end, so an interrupted install never leaves a half-filled DEST.
set -euo pipefail

buf_version=${1:?usage: $0 BUF_VERSION PROTOC_GEN_GO_VERSION PROTOC_GEN_GO_GRPC_VERSION DEST}
gen_go_version=${2:?usage: $0 BUF_VERSION PROTOC_GEN_GO_VERSION PROTOC_GEN_GO_GRPC_VERSION DEST}
gen_grpc_version=${3:?usage: $0 BUF_VERSION PROTOC_GEN_GO_VERSION PROTOC_GEN_GO_GRPC_VERSION DEST}
dest=${4:?usage: $0 BUF_VERSION PROTOC_GEN_GO_VERSION PROTOC_GEN_GO_GRPC_VERSION DEST}

if [ -x "$dest/buf" ] && [ -x "$dest/protoc-gen-go" ] && [ -x "$dest/protoc-gen-go-grpc" ]; then
  exit 0
fi

dir=$(dirname "$dest")
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "installing buf $buf_version, protoc-gen-go $gen_go_version, protoc-gen-go-grpc $gen_grpc_version (first run only, ~90 s)…"
start=$SECONDS
# Run outside the module so that Kite's go.mod plays no part in resolving the tools. One
# `go install` per tool: with versions, one command takes packages of one module only.
for pkg in "github.com/bufbuild/buf/cmd/buf@$buf_version" \
  "google.golang.org/protobuf/cmd/protoc-gen-go@$gen_go_version" \
  "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$gen_grpc_version"; do
  (cd "$tmp" && GOBIN="$tmp/bin" "${GO:-go}" install "$pkg")
done
rm -rf "$dest"
mv -f "$tmp/bin" "$dest"
echo "installed $dest in $((SECONDS - start))s"

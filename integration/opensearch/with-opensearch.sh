#!/usr/bin/env bash
# with-opensearch.sh CMD [ARG...]: start a real OpenSearch of its own
# (integration/opensearch/opensearch.sh) in a temp dir, run CMD with KITE_REAL_OPENSEARCH=1,
# KITE_OPENSEARCH_URL and KITE_OPENSEARCH_PID_FILE set, stop the node whatever CMD did (exit, failure, ^C), and exit
# with CMD's status. It composes with with-kafka.sh:
#   integration/kafka/with-kafka.sh integration/opensearch/with-opensearch.sh go test ./...
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
(($# > 0)) || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

dir="$(mktemp -d "${TMPDIR:-/tmp}/kite-opensearch.XXXXXX")"
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() { "$HERE/opensearch.sh" stop "$dir/node" || true; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$HERE/opensearch.sh" fetch
started=$SECONDS
out="$("$HERE/opensearch.sh" start "$dir/node")"
url="${out##*OPENSEARCH_URL=}"
echo "with-opensearch.sh: OpenSearch ready on $url in $((SECONDS - started))s; running: $*" >&2

export KITE_REAL_OPENSEARCH=1 KITE_OPENSEARCH_URL="$url" KITE_OPENSEARCH_PID_FILE="$dir/node/opensearch.pid"
status=0
"$@" || status=$?
exit "$status"

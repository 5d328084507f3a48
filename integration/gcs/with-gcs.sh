#!/usr/bin/env bash
# with-gcs.sh CMD [ARG...]: start a fake-gcs-server of its own (integration/gcs/fake-gcs.sh)
# in a temp dir, run CMD with KITE_REAL_GCS=1 and KITE_TEST_GCS_EMULATOR=127.0.0.1:PORT set,
# stop the server whatever CMD did (exit, failure, ^C), and exit with CMD's status.
# STORAGE_EMULATOR_HOST is not exported: it would point every GCS client of CMD at the
# emulator; tests set it themselves (t.Setenv) from KITE_TEST_GCS_EMULATOR. It composes
# with with-kafka.sh and with-opensearch.sh:
#   integration/kafka/with-kafka.sh integration/opensearch/with-opensearch.sh integration/gcs/with-gcs.sh go test ./...
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
(($# > 0)) || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

dir="$(mktemp -d "${TMPDIR:-/tmp}/kite-gcs.XXXXXX")"
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() { "$HERE/fake-gcs.sh" stop "$dir/server" || true; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$HERE/fake-gcs.sh" install
started=$SECONDS
out="$("$HERE/fake-gcs.sh" start "$dir/server")"
addr="${out##*KITE_TEST_GCS_EMULATOR=}"
echo "with-gcs.sh: fake-gcs-server ready on $addr in $((SECONDS - started))s; running: $*" >&2

export KITE_REAL_GCS=1 KITE_TEST_GCS_EMULATOR="$addr"
status=0
"$@" || status=$?
exit "$status"

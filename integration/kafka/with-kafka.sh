#!/usr/bin/env bash
# with-kafka.sh CMD [ARG...]: start a real Kafka of its own (integration/kafka/kafka.sh) in a
# temp dir, run CMD with KITE_REAL_KAFKA=1, KITE_KAFKA_BROKERS and KITE_KAFKA_PID_FILE set, stop the broker
# whatever CMD did (exit, failure, ^C), and exit with CMD's status. `make test` uses it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
(($# > 0)) || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

dir="$(mktemp -d "${TMPDIR:-/tmp}/kite-kafka.XXXXXX")"
cleanup() { "$HERE/kafka.sh" stop "$dir/broker" || true; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$HERE/kafka.sh" fetch
started=$SECONDS
out="$("$HERE/kafka.sh" start "$dir/broker")"
brokers="${out##*KAFKA_BROKERS=}"
echo "with-kafka.sh: Kafka ready on $brokers in $((SECONDS - started))s; running: $*" >&2

export KITE_REAL_KAFKA=1 KITE_KAFKA_BROKERS="$brokers" KITE_KAFKA_PID_FILE="$dir/broker/kafka.pid"
status=0
"$@" || status=$?
exit "$status"

#!/usr/bin/env bash
# `make bench`: start a Kite, run `kite bench` against it, stop it.
#
#   bench.sh standalone OUT [FLAG...]   every role in one process, embedded broker and index
#   bench.sh distributed OUT [FLAG...]  one process per role (api, executor, worker, scheduler,
#                                       indexer) on the real Kafka and OpenSearch of
#                                       with-kafka.sh and with-opensearch.sh, which this runs under
#
# OUT receives results.json, results.txt, results.svg and the servers' logs; FLAGs go to
# `kite bench` (kite bench --help). $KITE is the binary (bin/kite, built by `make bench`).
set -euo pipefail

KITE="${KITE:-bin/kite}"
log() { echo "bench.sh: $*" >&2; }
die() { log "$*"; exit 1; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh" # free_port

(($# >= 2)) || die "usage: $0 standalone|distributed OUT [kite bench flags...]"
mode="$1" out="$2"
shift 2
[[ -x "$KITE" ]] || die "$KITE not found: run 'make build' first"
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/kite-bench.XXXXXX")"
pids=()

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME ROLES [VAR=VALUE...]: `kite server ROLES` in the background, its log in OUT.
start() {
	local name="$1" roles="$2"
	shift 2
	env KITE_DATA_DIR="$work/data" KITE_LOG_LEVEL=warn KITE_PPROF=true "$@" "$KITE" server "$roles" >"$out/$name.log" 2>&1 &
	pids+=("$!")
	log "started kite server $roles (pid $!, log $out/$name.log)"
}

# wait_http URL: until URL answers 200, or the last process started exits.
wait_http() {
	local deadline=$((SECONDS + 180))
	until curl -fsS -o /dev/null "$1" 2>/dev/null; do
		kill -0 "${pids[-1]}" 2>/dev/null || { tail -n 30 "$out"/*.log >&2; die "a Kite process exited (logs above)"; }
		((SECONDS < deadline)) || die "$1 did not answer within 180s"
		sleep 0.5
	done
}

processes=()
versions=(--version "commit=$(git describe --always --dirty 2>/dev/null || echo unknown)")
case "$mode" in
standalone)
	broker="$(free_port)" grpc="$(free_port)" http="$(free_port)"
	start standalone standalone KITE_BROKER_PORT="$broker" KITE_API_GRPC_ADDR="127.0.0.1:$grpc" KITE_API_HTTP_ADDR="127.0.0.1:$http"
	wait_http "http://127.0.0.1:$http/healthz"
	brokers="127.0.0.1:$broker"
	processes+=(--process "standalone=http://127.0.0.1:$http/metrics")
	versions+=(--version "broker=embedded (kfake)" --version "index=embedded (SQLite)")
	name="standalone (every role in one process, embedded broker and index)"
	;;
distributed)
	[[ -n "${KITE_KAFKA_BROKERS:-}" && -n "${KITE_OPENSEARCH_URL:-}" ]] ||
		die "distributed needs a Kafka and an OpenSearch: run it under integration/kafka/with-kafka.sh integration/opensearch/with-opensearch.sh"
	brokers="$KITE_KAFKA_BROKERS"
	common=(KITE_KAFKA_BROKERS="$brokers" KITE_REPOSITORY_TYPE=elasticsearch
		KITE_REPOSITORY_ELASTICSEARCH_URLS="$KITE_OPENSEARCH_URL" KITE_REPOSITORY_ELASTICSEARCH_FLAVOR=opensearch
		KITE_REPOSITORY_ELASTICSEARCH_SHARDS=1)
	grpc="$(free_port)" http="$(free_port)"
	start api api "${common[@]}" KITE_API_GRPC_ADDR="127.0.0.1:$grpc" KITE_API_HTTP_ADDR="127.0.0.1:$http"
	wait_http "http://127.0.0.1:$http/healthz"
	processes+=(--process "api=http://127.0.0.1:$http/metrics")
	for role in executor worker scheduler indexer; do
		port="$(free_port)"
		start "$role" "$role" "${common[@]}" KITE_METRICS_ADDR="127.0.0.1:$port"
		wait_http "http://127.0.0.1:$port/healthz"
		processes+=(--process "$role=http://127.0.0.1:$port/metrics")
	done
	if [[ -n "${KITE_KAFKA_PID_FILE:-}" ]]; then
		kpid="$(cat "$KITE_KAFKA_PID_FILE")"
		processes+=(--process "kafka=$kpid")
		# The version names the folder of the broker's jars (kafka.sh's cache), on its class path.
		if v="$(tr '\0' '\n' <"/proc/$kpid/cmdline" | grep -o 'kafka/[0-9][0-9.]*/libs' | head -n 1)" && [[ -n "$v" ]]; then
			v="${v#kafka/}"
			versions+=(--version "kafka=${v%/libs}")
		fi
	fi
	[[ -n "${KITE_OPENSEARCH_PID_FILE:-}" ]] && processes+=(--process "opensearch=$(cat "$KITE_OPENSEARCH_PID_FILE")")
	if v="$(curl -fsS "$KITE_OPENSEARCH_URL" | jq -r .version.number 2>/dev/null)" && [[ -n "$v" ]]; then
		versions+=(--version "opensearch=$v")
	fi
	name="distributed (one process per role, Apache Kafka, OpenSearch)"
	;;
*) die "mode is standalone or distributed, not $mode" ;;
esac

log "running kite bench against $name"
"$KITE" bench --server "127.0.0.1:$grpc" --brokers "$brokers" --name "$name" --out "$out" \
	"${processes[@]}" "${versions[@]}" "$@"

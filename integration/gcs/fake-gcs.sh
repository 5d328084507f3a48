#!/usr/bin/env bash
# fake-gcs-server (github.com/fsouza/fake-gcs-server) for the integration tests: the
# emulator's own binary, built with `go install` (no Docker), serving the GCS JSON and XML
# APIs over plain HTTP on 127.0.0.1, objects on disk.
#
#   fake-gcs.sh install        build the binary into ~/.cache/kite/bin/fake-gcs-server-VERSION (first run only)
#   fake-gcs.sh start [DIR]    start it, wait until it answers; prints KITE_TEST_GCS_EMULATOR=127.0.0.1:PORT
#   fake-gcs.sh stop [DIR]     SIGTERM, SIGKILL after a grace period, remove DIR
#   fake-gcs.sh status [DIR]   exit 0 and print the address when the server in DIR runs
#
# The port is $KITE_GCS_PORT, else a free one. DIR defaults to $KITE_GCS_DIR or
# ${TMPDIR:-/tmp}/kite-gcs-$UID. It holds fake-gcs.pid, address (host:port), stdout.log and
# data/ (the filesystem backend's root: one folder per bucket).
#
# Clients reach it with STORAGE_EMULATOR_HOST=<address> (the Go client library then uses
# it without credentials) or with the endpoint http://<address>/storage/v1/. The public
# host and external URL are the address too, so that the XML API (object reads) and the
# Location of resumable uploads point back at this server.
set -euo pipefail

FAKE_GCS_VERSION="${KITE_FAKE_GCS_VERSION:-v1.56.1}"
KITE_CACHE="${KITE_CACHE:-$HOME/.cache/kite}"
BIN_DIR="$KITE_CACHE/bin/fake-gcs-server-$FAKE_GCS_VERSION"
BIN="$BIN_DIR/fake-gcs-server"
READY_TIMEOUT="${KITE_GCS_READY_TIMEOUT:-30}" # seconds
GO="${GO:-go}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

log() { echo "fake-gcs.sh: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=../lib.sh
source "$HERE/../lib.sh" # free_port

state_dir() { echo "${1:-${KITE_GCS_DIR:-${TMPDIR:-/tmp}/kite-gcs-$UID}}"; }

install() {
	if [[ -x "$BIN" && -f "$BIN_DIR/.complete" ]]; then return 0; fi
	command -v "$GO" >/dev/null || die "$GO not found: fake-gcs-server is built with go install"
	log "building fake-gcs-server $FAKE_GCS_VERSION into $BIN_DIR (first run only)…"
	# Outside the module, into a temporary directory moved into place at the end.
	GO="$GO" "$REPO/scripts/install-go-tools.sh" "$BIN_DIR" "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
	[[ -x "$BIN" ]] || die "go install did not produce $BIN"
}

# running DIR: true when the pid in DIR/fake-gcs.pid is a live fake-gcs-server.
running() {
	local pid
	[[ -f "$1/fake-gcs.pid" ]] || return 1
	pid="$(cat "$1/fake-gcs.pid")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q 'fake-gcs-server' "/proc/$pid/cmdline" 2>/dev/null
}

# kill_server PID: SIGTERM, SIGKILL when it has not exited after 10 s.
kill_server() {
	local pid="$1"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	log "fake-gcs-server (pid $pid) did not stop in 10s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

start() {
	local dir pid port addr deadline started
	dir="$(state_dir "${1:-}")"
	if running "$dir"; then
		log "already running in $dir"
		echo "KITE_TEST_GCS_EMULATOR=$(cat "$dir/address")"
		return 0
	fi
	command -v curl >/dev/null || die "curl not found: install curl"
	install
	port="${KITE_GCS_PORT:-$(free_port)}"
	addr="127.0.0.1:$port"
	# A server already there would answer the readiness check for this one.
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		die "port $port is in use on 127.0.0.1: set KITE_GCS_PORT to a free one, or unset it"
	fi
	rm -rf "$dir"
	mkdir -p "$dir/data"
	dir="$(cd "$dir" && pwd)"

	# setsid: the server is not in make's process group, so ^C on make does not kill it
	# before `stop` runs; stop is what ends it.
	setsid "$BIN" -scheme http -host 127.0.0.1 -port "$port" \
		-backend filesystem -filesystem-root "$dir/data" \
		-public-host "$addr" -external-url "http://$addr" \
		-log-level warn >"$dir/stdout.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/fake-gcs.pid"
	echo "$addr" >"$dir/address"

	started=$SECONDS
	deadline=$((SECONDS + READY_TIMEOUT))
	# Listing buckets answers once the HTTP server and its backend are up.
	until curl -fsS -o /dev/null --max-time 5 "http://$addr/storage/v1/b" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			# Another process took the free port between the check and the bind: try
			# another, unless the port was given.
			if grep -qs "address already in use" "$dir/stdout.log" && [[ -z "${KITE_GCS_PORT:-}" ]] &&
				((${KITE_GCS_START_TRIES:-0} < 3)); then
				log "port $port was taken while fake-gcs-server started; starting again on another"
				KITE_GCS_START_TRIES=$((${KITE_GCS_START_TRIES:-0} + 1)) exec "$0" start "${1:-}"
			fi
			tail -n 40 "$dir/stdout.log" >&2 || true
			die "fake-gcs-server exited while starting (logs in $dir)"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 40 "$dir/stdout.log" >&2 || true
			kill_server "$pid"
			die "fake-gcs-server on $addr not answering after ${READY_TIMEOUT}s; stopped it (logs in $dir)"
		fi
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null || die "fake-gcs-server exited right after answering on $addr (logs in $dir)"
	log "fake-gcs-server $FAKE_GCS_VERSION ready on $addr in $((SECONDS - started))s (pid $pid, dir $dir)"
	echo "KITE_TEST_GCS_EMULATOR=$addr"
}

stop() {
	local dir pid
	dir="$(state_dir "${1:-}")"
	if running "$dir"; then
		pid="$(cat "$dir/fake-gcs.pid")"
		kill_server "$pid"
		log "stopped fake-gcs-server (pid $pid)"
	fi
	# Only remove what looks like ours.
	if [[ -f "$dir/fake-gcs.pid" || -f "$dir/address" ]]; then rm -rf "$dir"; fi
}

status() {
	local dir
	dir="$(state_dir "${1:-}")"
	if running "$dir"; then
		echo "running: pid $(cat "$dir/fake-gcs.pid"), KITE_TEST_GCS_EMULATOR=$(cat "$dir/address"), dir $dir"
	else
		echo "not running ($dir)"
		return 1
	fi
}

case "${1:-}" in
install) install ;;
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
status) status "${2:-}" ;;
*)
	echo "usage: $0 install|start [DIR]|stop [DIR]|status [DIR]" >&2
	exit 2
	;;
esac

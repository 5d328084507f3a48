#!/usr/bin/env bash
# A real Apache Kafka broker for the integration tests, from Maven Central jars (no Docker,
# no tarball download): one KRaft node that is both broker and controller, on 127.0.0.1.
#
#   kafka.sh fetch          download the jars into ~/.cache/kite/kafka/VERSION/libs (first run only)
#   kafka.sh start [DIR]    format DIR, start the broker, wait until it answers; prints KAFKA_BROKERS=ADDR
#   kafka.sh stop [DIR]     SIGTERM, SIGKILL after a grace period, remove DIR
#   kafka.sh restart [DIR]  stop the broker (SIGTERM, SIGKILL after a grace period) and start it
#                           again on the same address with its data kept; prints KAFKA_BROKERS=ADDR
#   kafka.sh status [DIR]   exit 0 and print the address when the broker in DIR runs
#
# DIR defaults to $KITE_KAFKA_DIR or ${TMPDIR:-/tmp}/kite-kafka-$UID. It holds the data,
# server.properties, server.log, kafka.pid and brokers (the bootstrap address).
set -euo pipefail

KAFKA_VERSION="${KITE_KAFKA_VERSION:-4.3.1}"
KITE_CACHE="${KITE_CACHE:-$HOME/.cache/kite}"
CACHE_DIR="$KITE_CACHE/kafka/$KAFKA_VERSION"
LIBS="$CACHE_DIR/libs"
READY_TIMEOUT="${KITE_KAFKA_READY_TIMEOUT:-120}" # seconds; a cold JVM on 2 busy cores is slow
HEAP="${KITE_KAFKA_HEAP:--Xms256m -Xmx512m}"
GO="${GO:-go}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=../lib.sh
source "$HERE/../lib.sh" # free_port

state_dir() { echo "${1:-${KITE_KAFKA_DIR:-${TMPDIR:-/tmp}/kite-kafka-$UID}}"; }

fetch() {
	if [[ -f "$CACHE_DIR/.complete" ]]; then return 0; fi
	command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
	log "fetching Apache Kafka $KAFKA_VERSION from Maven Central (first run only)…"
	local tmp
	tmp="$(mktemp -d)"
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN
	# Kafka 4 logs through SLF4J 1.7 to Log4j 2 (as its own distribution does); the binding and core are not dependencies of
	# kafka_2.13, so they are listed here.
	cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.kiteflow.kite</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
EOF
	rm -rf "$LIBS.tmp"
	mkdir -p "$CACHE_DIR"
	if ! (cd "$tmp" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$LIBS.tmp") >"$tmp/mvn.log" 2>&1; then
		cat "$tmp/mvn.log" >&2
		die "fetching Kafka $KAFKA_VERSION failed (Maven's output above)"
	fi
	rm -rf "$LIBS"
	mv "$LIBS.tmp" "$LIBS"
	touch "$CACHE_DIR/.complete"
	log "Kafka $KAFKA_VERSION: $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

# running DIR: true when the pid in DIR/kafka.pid is a live Kafka.
running() {
	local pid
	[[ -f "$1/kafka.pid" ]] || return 1
	pid="$(cat "$1/kafka.pid")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q 'kafka\.Kafka' "/proc/$pid/cmdline" 2>/dev/null
}

start() {
	local dir port cport cluster_id
	dir="$(state_dir "${1:-}")"
	if running "$dir"; then
		log "already running in $dir"
		echo "KAFKA_BROKERS=$(cat "$dir/brokers")"
		return 0
	fi
	fetch
	rm -rf "$dir"
	mkdir -p "$dir/data"
	dir="$(cd "$dir" && pwd)"
	port="$(free_port)"
	cport="$(free_port)"
	while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done

	cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
EOF
	cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
EOF
	local java
	java_cmd "$dir"
	# A cluster id is 16 random bytes in URL-safe base64 without padding.
	# One starting with "-" would be read as an option by the storage tool.
	cluster_id="-"
	while [[ "$cluster_id" == -* ]]; do
		cluster_id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
	done
	"${java[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
		>"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; die "formatting $dir failed"; }
	echo "127.0.0.1:$port" >"$dir/brokers"

	local rc=0
	launch "$dir" || rc=$?
	if ((rc == 3)) && ((${KITE_KAFKA_START_TRIES:-0} < 3)); then
		# Another process took one of the free ports between the check and the
		# bind (a second Kafka starting at the same time): try new ports.
		log "a port was taken while Kafka started; starting again on other ports"
		KITE_KAFKA_START_TRIES=$((${KITE_KAFKA_START_TRIES:-0} + 1)) exec "$0" start "${1:-}"
	fi
	((rc == 0)) || die "Kafka did not start (logs in $dir)"
	echo "KAFKA_BROKERS=127.0.0.1:$port"
}

# java_cmd DIR: the java command line of the broker of DIR, into the array java.
java_cmd() {
	java=(java -cp "$LIBS/*" -Dlog4j2.configurationFile="$1/log4j2.properties" -Djava.awt.headless=true)
}

# launch DIR: run the broker formatted in DIR (on the address in DIR/brokers) and wait until
# it serves. Returns 3 when it exited because one of its ports was taken, 1 on other failures
# (the end of its logs printed).
launch() {
	local dir="$1" addr port pid deadline java
	addr="$(cat "$dir/brokers")"
	port="${addr##*:}"
	java_cmd "$dir"
	# setsid: the broker is not in make's process group, so ^C on make does not kill it
	# before `stop` runs; stop is what ends it.
	# shellcheck disable=SC2086
	setsid "${java[@]}" $HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		kafka.Kafka "$dir/server.properties" >>"$dir/stdout.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/kafka.pid"

	deadline=$((SECONDS + READY_TIMEOUT))
	until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			if grep -qs "Address already in use" "$dir/stdout.log" "$dir/server.log"; then return 3; fi
			tail -n 40 "$dir/stdout.log" "$dir/server.log" >&2 2>/dev/null || true
			log "Kafka exited while starting (logs in $dir)"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			tail -n 40 "$dir/server.log" >&2 || true
			log "Kafka not listening on $addr after ${READY_TIMEOUT}s"
			return 1
		fi
		sleep 0.3
	done
	# Listening is not serving: wait until a metadata request lists this broker and a
	# topic can be created and deleted (the controller has elected itself).
	if ! (cd "$REPO" && "$GO" run ./integration/kafka/ready -brokers "$addr" -timeout "$((deadline - SECONDS))s"); then
		tail -n 40 "$dir/server.log" >&2 || true
		log "Kafka on $addr did not become ready"
		return 1
	fi
	log "Kafka $KAFKA_VERSION ready on $addr (pid $pid, dir $dir)"
}

# restart DIR: stop the broker as `stop` does, but keep DIR, then run it again from it: same
# data, same address, same cluster. Not SIGKILL: after a crash, this single-node KRaft broker
# (4.3.1) can finish a transaction that was prepared before the crash without writing its
# markers (it sends them while its partitions have no leader yet, and skips them as "likely
# deleted"), which leaves offsets pending and partitions unreadable for read-committed
# consumers for good.
restart() {
	local dir pid
	dir="$(state_dir "${1:-}")"
	[[ -f "$dir/server.properties" && -f "$dir/brokers" ]] || die "no broker in $dir: start one first"
	dir="$(cd "$dir" && pwd)"
	if running "$dir"; then
		pid="$(cat "$dir/kafka.pid")"
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do # 20 s grace for a clean shutdown
			running "$dir" || break
			sleep 0.2
		done
		if running "$dir"; then
			log "Kafka (pid $pid) did not stop in 20s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			for _ in $(seq 1 50); do
				running "$dir" || break
				sleep 0.2
			done
		fi
		! running "$dir" || die "Kafka (pid $pid) still runs"
		log "stopped Kafka (pid $pid); starting it again"
	fi
	launch "$dir" || die "Kafka did not start again (logs in $dir)"
	echo "KAFKA_BROKERS=$(cat "$dir/brokers")"
}

stop() {
	local dir pid
	dir="$(state_dir "${1:-}")"
	if running "$dir"; then
		pid="$(cat "$dir/kafka.pid")"
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do # 20 s grace for a clean shutdown
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "Kafka (pid $pid) did not stop in 20s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		log "stopped Kafka (pid $pid)"
	fi
	# Only remove what looks like ours.
	if [[ -f "$dir/server.properties" || -f "$dir/kafka.pid" ]]; then rm -rf "$dir"; fi
}

status() {
	local dir
	dir="$(state_dir "${1:-}")"
	if running "$dir"; then
		echo "running: pid $(cat "$dir/kafka.pid"), KAFKA_BROKERS=$(cat "$dir/brokers"), dir $dir"
	else
		echo "not running ($dir)"
		return 1
	fi
}

case "${1:-}" in
fetch) fetch ;;
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
restart) restart "${2:-}" ;;
status) status "${2:-}" ;;
*)
	echo "usage: $0 fetch|start [DIR]|stop [DIR]|restart [DIR]|status [DIR]" >&2
	exit 2
	;;
esac

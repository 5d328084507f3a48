// Package chaos is Kite's chaos test (TestChaos, run by `make chaos`): thousands of
// executions of a mix of flows (sequential, parallel, ForEach, retries, subflows) on a
// real Apache Kafka and OpenSearch, every role in a `kite server ROLE` process of its
// own, while a driver kills a random role process with SIGKILL every few seconds and
// restarts the broker once (with SIGTERM: see kafka.sh restart for why not SIGKILL).
// Then it reads Kafka itself and checks that nothing was lost or applied twice: every
// execution ended, event sequences have no gap or duplicate, every task run has one
// terminal result, the search index matches Kafka, and a task that appends to a file
// did so once per attempt.
//
// It runs for about 11 minutes (on 2 cores), so only with KITE_CHAOS=1:
//
//	KITE_CHAOS=1 integration/opensearch/with-opensearch.sh go test -count=1 -timeout 25m \
//	    -run '^TestChaos$' -v ./integration/chaos
//
// The test starts its own broker (integration/kafka/kafka.sh start, then restart) in
// its temp dir. Settings, all optional:
//
//	KITE_CHAOS_EXECUTIONS  executions created through the API (10000)
//	KITE_CHAOS_DURATION    how long creating them takes, at a steady rate (9m)
//	KITE_CHAOS_QUIESCE     how long every execution has to end once the creation ended (5m)
//	KITE_CHAOS_SEED        seed of the chaos schedule (random; printed, to replay an order)
//	KITE_CHAOS_KILLS       0: no kill and no broker restart, for a baseline run
//	KITE_CHAOS_DIR         a directory for the logs, the side-effect file and the broker,
//	                       kept after the test (default: the test's temp dir)
package chaos

// Package indexer holds the repository implementations (core/repository):
// elasticsearch/ (Elasticsearch 8 and OpenSearch 2) and embedded/ (SQLite in
// the data dir, for standalone). The indexer role that writes to them reads
// Kafka, so it lives with the other roles in services/indexer: packages under
// indexer/ import core, never streams.
package indexer

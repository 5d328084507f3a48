// Package indexer projects Kite's Kafka topics into the repository: the indexer role
// and the Elasticsearch and embedded repository implementations (DESIGN.md; issue 6).
package indexer

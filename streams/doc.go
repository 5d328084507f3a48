// Package streams is Kite's exactly-once stream processing on franz-go: processors,
// state stores, changelogs, timers and the embedded broker. It is the only package
// that knows topic names, partitioning and codecs (DESIGN.md; issue 4).
package streams

// Package storagegcs is Kite's internal storage on Google Cloud Storage
// (DESIGN.md, "Internal storage"; issue 7): the production sibling of the
// local filesystem implementation in core/storage, behind the same
// storage.Storage interface and passing the same acceptance suite
// (core/storage/storagetest).
//
// The object of kite:///<path> is gs://<bucket>/<prefix>/<path>. Puts are
// resumable uploads sent in chunks of Config.ChunkSize, the only buffer a
// Put holds; GCS makes an object visible when its upload is finalized, which
// gives Kite's atomic visibility. Errors of the client library are
// translated here, at the edge, into storage.ErrNotFound and
// storage.ErrUnavailable.
//
// Tests run against fake-gcs-server: in-process for unit tests, and the
// fake-gcs-server binary started by integration/gcs/with-gcs.sh for the
// integration test (KITE_TEST_GCS_EMULATOR).
package storagegcs

// Package gcstest runs fake-gcs-server in-process for tests, on 127.0.0.1,
// with a handler of the test's in front of it (to record requests or to
// answer with errors, as a failing GCS front end would).
package gcstest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Server is a running fake-gcs-server.
type Server struct {
	*fakestorage.Server
	// URL is its base URL, http://127.0.0.1:PORT: the Endpoint of a
	// storagegcs.Config.
	URL string
}

// Start starts fake-gcs-server, stopped when the test ends. wrap, when not
// nil, receives the fake's handler and returns the one to serve.
//
// The fake answers its XML API routes (which the Go client reads objects
// with) on its public host only, so the listener comes first and the
// public host is its address; serving the fake's handler on an
// httptest.Server of ours is what its NoListener: false would do.
func Start(tb testing.TB, wrap func(http.Handler) http.Handler) *Server {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listening on 127.0.0.1: %v", err)
	}
	addr := l.Addr().String()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", NoListener: true, PublicHost: addr, ExternalURL: "http://" + addr,
	})
	if err != nil {
		tb.Fatalf("starting fake-gcs-server: %v", err)
	}
	h := srv.HTTPHandler()
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewUnstartedServer(h)
	_ = hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	tb.Cleanup(func() {
		hs.Close()
		srv.Stop()
	})
	return &Server{Server: srv, URL: "http://" + addr}
}

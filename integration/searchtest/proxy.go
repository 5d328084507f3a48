package searchtest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of the search server, for outage tests:
// Cut closes every connection and refuses new ones (as a server that went
// away), Restore accepts them again, on the same address. It is a real
// socket outage from the client's side; the server itself keeps running,
// shared by the other tests.
type Proxy struct {
	tb     testing.TB
	target string // host:port of the server
	addr   string

	mu    sync.Mutex
	lis   net.Listener
	conns map[net.Conn]bool
}

// NewProxy starts a proxy to the server at serverURL, stopped when the test
// ends.
func NewProxy(tb testing.TB, serverURL string) *Proxy {
	tb.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		tb.Fatalf("search server URL %q: %v", serverURL, err)
	}
	p := &Proxy{tb: tb, target: u.Host, conns: map[net.Conn]bool{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p.addr = lis.Addr().String()
	p.serve(lis)
	tb.Cleanup(p.Cut)
	return p
}

// URL is the proxy's base URL.
func (p *Proxy) URL() string { return "http://" + p.addr }

func (p *Proxy) serve(lis net.Listener) {
	p.mu.Lock()
	p.lis = lis
	p.mu.Unlock()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *Proxy) pipe(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.lis == nil { // cut meanwhile
		p.mu.Unlock()
		_ = c.Close()
		_ = s.Close()
		return
	}
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(s, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, s); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = s.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// Cut closes the listener and every open connection: requests fail with
// connection refused or reset until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		_ = p.lis.Close()
		p.lis = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Restore listens again on the same address.
func (p *Proxy) Restore() {
	p.tb.Helper()
	var lis net.Listener
	var err error
	for range 50 { // the port was just released; another process may hold it a moment
		if lis, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(lis)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.tb.Fatalf("proxy: listening again on %s: %v", p.addr, err)
}

// DeleteIndices deletes the indices and index templates matching pattern
// (kite-t123-*), for a test's cleanup.
func DeleteIndices(tb testing.TB, serverURL, pattern string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, path := range []string{"/" + pattern + "?expand_wildcards=all", "/_index_template/" + pattern} {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, serverURL+path, nil)
		if err != nil {
			tb.Error(err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Errorf("DELETE %s: %v", path, err)
			return
		}
		_ = resp.Body.Close()
		if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
			// Left-over templates of a test's own prefix harm nobody.
			tb.Logf("DELETE %s: %s", path, resp.Status)
		}
	}
}

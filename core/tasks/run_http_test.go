package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/flow"
)

// newTestServer starts an HTTP server on loopback for the http-request
// tests.
func newTestServer(tb testing.TB) *httptest.Server {
	tb.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		var form string
		// The media type only: a multipart boundary is random.
		ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
		if ct == "multipart/form-data" {
			if err := r.ParseMultipartForm(1 << 20); err == nil {
				form = fmt.Sprint(r.MultipartForm.Value)
			}
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Reply", "yes")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		fmt.Fprintf(w, "%s %s|ct=%s|x-test=%s|auth=%s|body=%s%s",
			r.Method, r.URL.Path, ct, r.Header.Get("X-Test"),
			r.Header.Get("Authorization"), body, form)
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d", code)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo", http.StatusFound)
	})
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	mux.HandleFunc("/stall-body", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "partial")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("x", 1<<20)
		for range maxResponseBody>>20 + 1 {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv
}

func TestHTTPRequest(t *testing.T) {
	srv := newTestServer(t)
	vars := map[string]any{"inputs": map[string]any{"base": srv.URL, "name": "Ada"}}
	tests := []struct {
		name       string
		task       string
		wantErr    []string // substrings of the error
		wantState  execution.State
		wantCode   int
		wantBody   string
		wantHeader map[string]any
	}{
		{
			name: "GET with headers",
			task: `
  - id: t
    type: io.kestra.plugin.core.http.Request
    uri: "{{ inputs.base }}/echo"
    headers:
      X-Test: "hello {{ inputs.name }}"`,
			wantCode:   200,
			wantBody:   "GET /echo|ct=|x-test=hello Ada|auth=|body=",
			wantHeader: map[string]any{"x-reply": []any{"yes"}, "x-multi": []any{"a", "b"}},
		},
		{
			name: "POST with a body, JSON by default",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/echo"
    method: POST
    body: '{"name": "{{ inputs.name }}"}'`,
			wantCode: 200,
			wantBody: `POST /echo|ct=application/json|x-test=|auth=|body={"name": "Ada"}`,
		},
		{
			name: "PUT with a content type",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/echo"
    method: PUT
    contentType: text/plain
    body: plain`,
			wantCode: 200,
			wantBody: "PUT /echo|ct=text/plain|x-test=|auth=|body=plain",
		},
		{
			name: "form data URL-encoded",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/echo"
    method: POST
    formData:
      user: "{{ inputs.name }}"
      n: 2`,
			wantCode: 200,
			wantBody: "POST /echo|ct=application/x-www-form-urlencoded|x-test=|auth=|body=n=2&user=Ada",
		},
		{
			name: "form data as multipart",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/echo"
    method: POST
    contentType: multipart/form-data
    formData:
      user: "{{ inputs.name }}"`,
			wantCode: 200,
			wantBody: "POST /echo|ct=multipart/form-data|x-test=|auth=|body=map[user:[Ada]]",
		},
		{
			name: "basic authentication",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/echo"
    options:
      auth:
        type: BASIC
        username: ada
        password: secret`,
			wantCode: 200,
			wantBody: "GET /echo|ct=|x-test=|auth=Basic YWRhOnNlY3JldA==|body=",
		},
		{
			name: "bearer authentication",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/echo"
    options:
      auth: {type: BEARER, token: tok}`,
			wantCode: 200,
			wantBody: "GET /echo|ct=|x-test=|auth=Bearer tok|body=",
		},
		{
			name: "404 fails",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/status/404"`,
			wantErr:   []string{"GET " + srv.URL + "/status/404", "404 Not Found", "status 404"},
			wantState: execution.Failed,
			wantCode:  404,
			wantBody:  "status 404",
		},
		{
			name: "404 allowed by options.allowFailed",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/status/404"
    options:
      allowFailed: true`,
			wantCode: 404,
			wantBody: "status 404",
		},
		{
			name: "404 allowed by the deprecated allowFailed",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/status/404"
    allowFailed: true`,
			wantCode: 404,
			wantBody: "status 404",
		},
		{
			name: "404 allowed by allowedResponseCodes",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/status/404"
    options:
      allowedResponseCodes: [200, 404]`,
			wantCode: 404,
			wantBody: "status 404",
		},
		{
			name: "201 not among allowedResponseCodes",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/status/201"
    options:
      allowedResponseCodes: [200]`,
			wantErr:   []string{"201 Created", "is not among options.allowedResponseCodes [200]"},
			wantState: execution.Failed,
			wantCode:  201,
		},
		{
			name: "redirects followed by default",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/redirect"`,
			wantCode: 200,
			wantBody: "GET /echo|ct=|x-test=|auth=|body=",
		},
		{
			name: "redirects not followed",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/redirect"
    options:
      followRedirects: false`,
			wantCode:   302,
			wantHeader: map[string]any{"location": []any{"/echo"}},
		},
		{
			name: "no response within readIdleTimeout",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/block"
    options:
      timeout:
        readIdleTimeout: PT0.2S`,
			wantErr: []string{"GET " + srv.URL + "/block", "no response within options.timeout.readIdleTimeout (200ms)"},
		},
		{
			name: "the deprecated readTimeout",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/block"
    options:
      readTimeout: PT0.2S`,
			wantErr: []string{"no response within options.timeout.readIdleTimeout (200ms)"},
		},
		{
			name: "a body stalling beyond readIdleTimeout",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/stall-body"
    options:
      timeout:
        readIdleTimeout: PT0.2S`,
			wantErr: []string{"GET " + srv.URL + "/stall-body", "no data within options.timeout.readIdleTimeout (200ms)"},
		},
		{
			name: "a body too large",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/big"`,
			wantErr: []string{"GET " + srv.URL + "/big", "larger than 10 MiB"},
		},
		{
			name: "not an HTTP URI",
			task: `
  - id: t
    type: http-request
    uri: "ftp://{{ inputs.name }}/x"`,
			wantErr: []string{`uri: "ftp://Ada/x" is not an absolute http:// or https:// URI`},
		},
		{
			name: "encrypted body",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/echo"
    encryptBody: true`,
			wantErr: []string{"encryptBody: encrypted outputs are not supported yet"},
		},
		{
			name: "an unknown auth type",
			task: `
  - id: t
    type: http-request
    uri: "{{ inputs.base }}/echo"
    options:
      auth: {type: DIGEST}`,
			wantErr: []string{`options.auth.type: "DIGEST" is not supported`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, _ := newRunContext(t, parseTask(t, tt.task), vars)
			res, err := runTask(t.Context(), t, rc)
			for _, want := range tt.wantErr {
				wantErr(t, err, want)
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if res == nil {
				if tt.wantCode != 0 {
					t.Fatalf("no result, want code %d", tt.wantCode)
				}
				return
			}
			if res.State != tt.wantState {
				t.Errorf("state = %q, want %q", res.State, tt.wantState)
			}
			if got := res.Outputs["code"]; got != tt.wantCode {
				t.Errorf("code = %v, want %d", got, tt.wantCode)
			}
			if body, _ := res.Outputs["body"].(string); tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
			headers, _ := res.Outputs["headers"].(map[string]any)
			for k, want := range tt.wantHeader {
				if got := headers[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("headers[%q] = %#v, want %#v", k, got, want)
				}
			}
			if uri, _ := res.Outputs["uri"].(string); !strings.HasPrefix(uri, srv.URL+"/") {
				t.Errorf("uri = %q, want the request's", uri)
			}
		})
	}
}

func TestHTTPRequestReturnsWhenCancelled(t *testing.T) {
	srv := newTestServer(t)
	rc, _ := newRunContext(t, &flow.Task{ID: "t", Type: "http-request", Props: map[string]any{"uri": srv.URL + "/block"}}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := Runners()["http-request"].Run(ctx, rc)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "GET "+srv.URL+"/block") {
			t.Fatalf("error = %v, want one naming the request and wrapping context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not return within 10s of cancellation")
	}
}

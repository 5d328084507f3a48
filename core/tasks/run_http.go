package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kiteflow/kite/core/execution"
)

const (
	// maxResponseBody caps the body read into the body output, as Kestra's
	// default maxContentLength does.
	maxResponseBody = 10 << 20
	// defaultReadIdleTimeout is Kestra's default options.timeout.readIdleTimeout.
	defaultReadIdleTimeout = 5 * time.Minute
	maxRedirects           = 10
)

// errReadIdle is the cause of a request cancelled for reading nothing for
// readIdleTimeout.
var errReadIdle = errors.New("read idle timeout")

// httpOptions are the options property of the http-request task.
type httpOptions struct {
	connectTimeout  time.Duration // 0: none beyond ctx and the OS
	readIdleTimeout time.Duration
	followRedirects bool
	allowFailed     bool
	allowedCodes    []int
	basicUser       string
	basicPassword   string
	bearerToken     string
}

// runHTTPRequest is Kestra's http Request task. It sends one request and
// outputs uri, code, headers (lowercase names, each to its list of values)
// and body (the text of the response, at most 10 MiB). A response code of
// 400 or more fails the attempt unless options.allowFailed; when
// options.allowedResponseCodes is set, exactly those codes succeed. On
// such a failure Run returns the Result, with the outputs, together with
// the error.
func runHTTPRequest(ctx context.Context, rc *RunContext) (*Result, error) {
	rawURI, err := rc.String(ctx, "uri")
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(rawURI))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("uri: %q is not an absolute http:// or https:// URI", abbreviate(rawURI, 200))
	}
	method, err := rc.String(ctx, "method")
	if err != nil {
		return nil, err
	}
	method = strings.ToUpper(strings.TrimSpace(method))
	if method == "" {
		method = http.MethodGet
	}
	opts, err := httpOptionsProp(ctx, rc)
	if err != nil {
		return nil, err
	}
	if encrypt, err := boolProp(ctx, rc, "encryptBody", false); err != nil {
		return nil, err
	} else if encrypt {
		return nil, fmt.Errorf("encryptBody: encrypted outputs are not supported yet; remove encryptBody to output the body as is")
	}
	headers, err := stringMapProp(ctx, rc, "headers")
	if err != nil {
		return nil, err
	}
	body, contentType, err := httpBody(ctx, rc)
	if err != nil {
		return nil, err
	}
	target := method + " " + u.Redacted()

	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var bodyReader io.Reader
	if body != nil {
		bodyReader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(reqCtx, method, u.String(), bodyReader)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case opts.basicUser != "" || opts.basicPassword != "":
		req.SetBasicAuth(opts.basicUser, opts.basicPassword)
	case opts.bearerToken != "":
		req.Header.Set("Authorization", "Bearer "+opts.bearerToken)
	}
	for k, v := range headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: opts.connectTimeout, KeepAlive: 30 * time.Second}).DialContext
	transport.ResponseHeaderTimeout = opts.readIdleTimeout
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if !opts.followRedirects {
				return http.ErrUseLastResponse
			}
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}

	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, describeHTTPError(ctx, err, opts))
	}
	defer func() { _ = resp.Body.Close() }()
	respBody, err := readResponseBody(reqCtx, cancel, resp.Body, opts.readIdleTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the response body: %w", target, err)
	}

	respHeaders := make(map[string]any, len(resp.Header))
	for k, vs := range resp.Header {
		l := make([]any, len(vs))
		for i, v := range vs {
			l[i] = v
		}
		respHeaders[strings.ToLower(k)] = l
	}
	text := strings.ToValidUTF8(string(respBody), "\uFFFD")
	outputs := map[string]any{
		"uri":     u.String(),
		"code":    resp.StatusCode,
		"headers": respHeaders,
		"body":    text,
	}
	if !opts.codeAllowed(resp.StatusCode) {
		msg := fmt.Sprintf("%s: response code %s", target, resp.Status)
		if len(opts.allowedCodes) > 0 {
			msg += fmt.Sprintf(" is not among options.allowedResponseCodes %v", opts.allowedCodes)
		}
		if t := strings.TrimSpace(text); t != "" {
			msg += ": " + abbreviate(t, 200)
		}
		return &Result{State: execution.Failed, Outputs: outputs}, errors.New(msg)
	}
	return &Result{Outputs: outputs}, nil
}

// codeAllowed is Kestra's rule: allowedResponseCodes when set, else any
// code with allowFailed, else codes below 400.
func (o *httpOptions) codeAllowed(code int) bool {
	if len(o.allowedCodes) > 0 {
		return slices.Contains(o.allowedCodes, code)
	}
	return o.allowFailed || code < 400
}

// httpBody builds the request body: body as is, or formData URL-encoded
// (multipart when contentType is multipart/form-data). It returns a nil
// body when neither is set.
func httpBody(ctx context.Context, rc *RunContext) ([]byte, string, error) {
	contentType, err := rc.String(ctx, "contentType")
	if err != nil {
		return nil, "", err
	}
	if contentType == "" {
		contentType = "application/json"
	}
	if rc.Has("body") {
		if rc.Has("formData") {
			return nil, "", fmt.Errorf("body and formData are both set; set one of them")
		}
		s, err := rc.String(ctx, "body")
		if err != nil {
			return nil, "", err
		}
		return []byte(s), contentType, nil
	}
	if !rc.Has("formData") {
		return nil, "", nil
	}
	v, err := rc.Value(ctx, "formData")
	if err != nil {
		return nil, "", err
	}
	form, err := toStringMap("formData", v)
	if err != nil {
		return nil, "", fmt.Errorf("%w (file fields are not supported yet)", err)
	}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if mediaType, _, _ := strings.Cut(contentType, ";"); strings.EqualFold(strings.TrimSpace(mediaType), "multipart/form-data") {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for _, k := range keys {
			if err := w.WriteField(k, form[k]); err != nil {
				return nil, "", fmt.Errorf("formData.%s: %w", k, err)
			}
		}
		if err := w.Close(); err != nil {
			return nil, "", fmt.Errorf("formData: %w", err)
		}
		return buf.Bytes(), w.FormDataContentType(), nil
	}
	values := url.Values{}
	for _, k := range keys {
		values.Set(k, form[k])
	}
	return []byte(values.Encode()), "application/x-www-form-urlencoded", nil
}

// httpOptionsProp reads the options property and the deprecated top-level
// allowFailed.
func httpOptionsProp(ctx context.Context, rc *RunContext) (*httpOptions, error) {
	o := &httpOptions{followRedirects: true, readIdleTimeout: defaultReadIdleTimeout}
	topAllowFailed, err := boolProp(ctx, rc, "allowFailed", false)
	if err != nil {
		return nil, err
	}
	v, err := rc.Render(ctx, "options")
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if v != nil && !ok {
		return nil, fmt.Errorf("options: expected a map, got %s", typeName(v))
	}
	timeouts, ok := m["timeout"].(map[string]any)
	if m["timeout"] != nil && !ok {
		return nil, fmt.Errorf("options.timeout: expected a map, got %s", typeName(m["timeout"]))
	}
	// The nested timeout.* names win over the deprecated flat ones.
	for _, d := range []struct {
		dst   *time.Duration
		names []string
		vals  []any
	}{
		{&o.connectTimeout, []string{"options.timeout.connectTimeout", "options.connectTimeout"}, []any{timeouts["connectTimeout"], m["connectTimeout"]}},
		{&o.readIdleTimeout, []string{"options.timeout.readIdleTimeout", "options.readTimeout"}, []any{timeouts["readIdleTimeout"], m["readTimeout"]}},
	} {
		for i, val := range d.vals {
			if val == nil {
				continue
			}
			t, err := toDuration(d.names[i], val)
			if err != nil {
				return nil, err
			}
			if t > 0 {
				*d.dst = t
				break
			}
		}
	}
	if o.followRedirects, err = toBool("options.followRedirects", m["followRedirects"], true); err != nil {
		return nil, err
	}
	if o.allowFailed, err = toBool("options.allowFailed", m["allowFailed"], false); err != nil {
		return nil, err
	}
	o.allowFailed = o.allowFailed || topAllowFailed
	if o.allowedCodes, err = toIntList("options.allowedResponseCodes", m["allowedResponseCodes"]); err != nil {
		return nil, err
	}
	if err := o.readAuth(m["auth"]); err != nil {
		return nil, err
	}
	for _, name := range []string{"proxy", "ssl", "logs"} {
		if m[name] != nil {
			rc.Logf(LevelWarn, "options.%s is not supported yet and is ignored", name)
		}
	}
	if rc.Has("sslOptions") {
		rc.Logf(LevelWarn, "sslOptions is not supported yet and is ignored")
	}
	return o, nil
}

// readAuth reads options.auth: {type: BASIC, username, password} or
// {type: BEARER, token}.
func (o *httpOptions) readAuth(v any) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("options.auth: expected a map with a type (BASIC or BEARER), got %s", typeName(v))
	}
	str := func(k string) string {
		if m[k] == nil {
			return ""
		}
		return fmt.Sprint(m[k])
	}
	switch t := strings.ToUpper(str("type")); t {
	case "BASIC":
		o.basicUser, o.basicPassword = str("username"), str("password")
		if o.basicUser == "" {
			return fmt.Errorf("options.auth: BASIC authentication needs a username")
		}
	case "BEARER":
		o.bearerToken = str("token")
		if o.bearerToken == "" {
			return fmt.Errorf("options.auth: BEARER authentication needs a token")
		}
	default:
		return fmt.Errorf("options.auth.type: %q is not supported; use BASIC or BEARER", str("type"))
	}
	return nil
}

// toIntList converts a list of integers, or the JSON text of one.
func toIntList(what string, v any) ([]int, error) {
	if s, ok := v.(string); ok {
		var l []any
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			return nil, fmt.Errorf("%s: expected a list of integers, got %q", what, abbreviate(s, 80))
		}
		v = l
	}
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: expected a list of integers, got %s", what, typeName(v))
	}
	out := make([]int, 0, len(l))
	for i, item := range l {
		n, err := toInt(fmt.Sprintf("%s[%d]", what, i), item)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// describeHTTPError turns a client error into one naming the option at
// play when it is a timeout. The method and URI are added by the caller
// (url.Error's own prefix is dropped for that).
func describeHTTPError(ctx context.Context, err error, o *httpOptions) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("request interrupted: %w", ctx.Err())
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && op.Timeout() {
		return fmt.Errorf("no connection within options.timeout.connectTimeout (%s): %w", o.connectTimeout, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no response within options.timeout.readIdleTimeout (%s): %w", o.readIdleTimeout, err)
	}
	return err
}

// readResponseBody reads body up to maxResponseBody bytes, failing when
// nothing arrives for idle (cancelling the request through cancel).
func readResponseBody(ctx context.Context, cancel context.CancelCauseFunc, body io.Reader, idle time.Duration) ([]byte, error) {
	timer := time.AfterFunc(idle, func() { cancel(errReadIdle) })
	defer timer.Stop()
	var buf bytes.Buffer
	chunk := make([]byte, 32<<10)
	for {
		timer.Reset(idle)
		n, err := body.Read(chunk)
		buf.Write(chunk[:n])
		if buf.Len() > maxResponseBody {
			return nil, fmt.Errorf("the response body is larger than %d MiB, the most the body output holds", maxResponseBody>>20)
		}
		if errors.Is(err, io.EOF) {
			return buf.Bytes(), nil
		}
		if err != nil {
			if errors.Is(context.Cause(ctx), errReadIdle) {
				return nil, fmt.Errorf("no data within options.timeout.readIdleTimeout (%s)", idle)
			}
			return nil, err
		}
	}
}

package main

// The client side of the command line: the flags every command that talks to
// a Kite server takes, the gRPC connection, the three output formats, and the
// translation of gRPC errors into messages a person can act on.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/core/execution"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// clientDefaultServer is where the client looks for the API server when
// neither --server nor KITE_SERVER says otherwise.
const clientDefaultServer = "localhost:7777"

// Output formats of --output.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// clientFlags are the flags of the commands that talk to a Kite server.
type clientFlags struct {
	server  string
	timeout time.Duration
	output  string
	tls     bool
	caFile  string
}

// addClientFlags registers the client flags on cmd: as persistent flags for a
// group whose every subcommand talks to the server (kite execution), as local
// flags otherwise (kite flow also holds commands that work on files alone,
// whose --output and --timeout mean something else).
func addClientFlags(cmd *cobra.Command, persistent bool) *clientFlags {
	cf := &clientFlags{}
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	server := os.Getenv("KITE_SERVER")
	if server == "" {
		server = clientDefaultServer
	}
	fs.StringVar(&cf.server, "server", server, "address (host:port) of the Kite API server; $KITE_SERVER when set")
	fs.DurationVar(&cf.timeout, "timeout", 30*time.Second, "how long to wait for the server to answer a request (not for streams: --wait, --follow, watch, tail)")
	fs.StringVarP(&cf.output, "output", "o", outputTable, "table, json or yaml; json is protobuf's JSON mapping (camelCase names), one document per line when a command prints several")
	fs.BoolVar(&cf.tls, "tls", false, "connect with TLS (the default is plaintext), checking the server's certificate against the system's roots")
	fs.StringVar(&cf.caFile, "ca-file", "", "PEM file of the certificate authorities to check the server's certificate with (implies --tls)")
	return cf
}

// apiClient is a connection to the Kite API server and its services.
type apiClient struct {
	addr    string
	timeout time.Duration
	conn    *grpc.ClientConn

	flows  kitev1.FlowServiceClient
	execs  kitev1.ExecutionServiceClient
	logs   kitev1.LogServiceClient
	search kitev1.SearchServiceClient
}

// dial checks the flags and connects. The connection is lazy: a server that
// cannot be reached shows at the first call (see apiError). The caller closes
// the client.
func (cf *clientFlags) dial() (*apiClient, error) {
	switch cf.output {
	case outputTable, outputJSON, outputYAML:
	default:
		return nil, fmt.Errorf("--output is table, json or yaml, not %q", cf.output)
	}
	if cf.server == "" {
		return nil, errors.New("--server is empty: give the address (host:port) of the Kite API server")
	}
	creds := insecure.NewCredentials()
	if cf.tls || cf.caFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if cf.caFile != "" {
			pem, err := os.ReadFile(cf.caFile)
			if err != nil {
				return nil, fmt.Errorf("reading --ca-file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", cf.caFile)
			}
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(cf.server, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("--server %q: %w", cf.server, err)
	}
	return &apiClient{
		addr:    cf.server,
		timeout: cf.timeout,
		conn:    conn,
		flows:   kitev1.NewFlowServiceClient(conn),
		execs:   kitev1.NewExecutionServiceClient(conn),
		logs:    kitev1.NewLogServiceClient(conn),
		search:  kitev1.NewSearchServiceClient(conn),
	}, nil
}

func (c *apiClient) Close() error { return c.conn.Close() }

// unary returns the context of one unary call: ctx bounded by --timeout.
func (c *apiClient) unary(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// apiError turns an error of a call to the server into one a person can act
// on. Errors that are not gRPC statuses are returned as they are.
func (c *apiClient) apiError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("cannot reach the Kite server at %s: %s (is `kite server standalone` running? set --server or KITE_SERVER)", c.addr, cleanTransportMessage(msg))
	case codes.DeadlineExceeded:
		return fmt.Errorf("the Kite server at %s did not answer within %s (--timeout): %s", c.addr, c.timeout, msg)
	case codes.Canceled:
		return fmt.Errorf("interrupted: %s", msg)
	case codes.Unimplemented:
		return fmt.Errorf("the Kite server at %s does not offer this (%s): is it an older version than this kite?", c.addr, msg)
	case codes.InvalidArgument:
		if vs := violations(err); len(vs) > 0 {
			lines := make([]string, 0, len(vs)+1)
			lines = append(lines, msg+":")
			for _, v := range vs {
				lines = append(lines, "  "+v.GetField()+": "+v.GetDescription())
			}
			return errors.New(strings.Join(lines, "\n"))
		}
		return errors.New(msg)
	case codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists, codes.OutOfRange:
		return errors.New(msg) // the server's message names what is missing or why not
	}
	return fmt.Errorf("the Kite server at %s answered %s: %s", c.addr, st.Code(), msg)
}

// cleanTransportMessage drops gRPC's wrapping of dial errors:
// `connection error: desc = "transport: Error while dialing: dial tcp …: connection refused"`.
func cleanTransportMessage(msg string) string {
	msg = strings.TrimPrefix(msg, "connection error: desc = ")
	msg = strings.Trim(msg, `"`)
	return strings.TrimPrefix(msg, "transport: Error while dialing: ")
}

// violations returns the field violations of the google.rpc.BadRequest in the
// details of a status error, in order.
func violations(err error) []*errdetails.BadRequest_FieldViolation {
	st, _ := status.FromError(err)
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}

// statusMessage is the message of a gRPC status error.
func statusMessage(err error) string {
	st, _ := status.FromError(err)
	return st.Message()
}

func isCode(err error, code codes.Code) bool {
	st, ok := status.FromError(err)
	return ok && err != nil && st.Code() == code
}

// printer writes what a command prints in the --output format: protobuf
// messages as JSON or YAML documents; table output is the command's own.
// A command that prints several documents (one per file applied, per event,
// per log line) sets stream: JSON then goes one document per line (JSON
// Lines), YAML as documents separated by ---; a single document is indented.
type printer struct {
	w      io.Writer
	format string
	stream bool
	n      int
}

func (p *printer) table() bool { return p.format == outputTable }

func (p *printer) print(m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding %s as JSON: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	// protojson's spacing is deliberately unstable; json.Compact and
	// json.Indent give the same bytes every time.
	var out bytes.Buffer
	switch {
	case p.format == outputYAML:
		y, err := jsonToYAML(b)
		if err != nil {
			return err
		}
		if p.n > 0 {
			out.WriteString("---\n")
		}
		out.Write(y)
	case p.stream:
		if err := json.Compact(&out, b); err != nil {
			return err
		}
		out.WriteByte('\n')
	default:
		if err := json.Indent(&out, b, "", "  "); err != nil {
			return err
		}
		out.WriteByte('\n')
	}
	p.n++
	_, err = p.w.Write(out.Bytes())
	return err
}

// jsonToYAML converts a JSON document to block-style YAML, keeping the order
// of the keys; strings that would read as another type stay quoted.
func jsonToYAML(js []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("converting JSON to YAML: %w", err)
	}
	var plain func(n *yaml.Node)
	plain = func(n *yaml.Node) {
		n.Style = 0
		for _, c := range n.Content {
			plain(c)
		}
	}
	plain(&doc)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("converting JSON to YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("converting JSON to YAML: %w", err)
	}
	return b.Bytes(), nil
}

// keyValues reads repeated key=value flags (--input, --label) in order.
func keyValues(flag string, values []string) ([][2]string, error) {
	out := make([][2]string, 0, len(values))
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: write it as key=value", flag, kv)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// stringInputs turns key=value inputs into a Struct of strings: the server
// types each value by the flow's declaration of the input.
func stringInputs(kvs [][2]string) (*structpb.Struct, error) {
	fields := make(map[string]*structpb.Value, len(kvs))
	for _, kv := range kvs {
		if _, dup := fields[kv[0]]; dup {
			return nil, fmt.Errorf("--input %s is given twice", kv[0])
		}
		fields[kv[0]] = structpb.NewStringValue(kv[1])
	}
	return &structpb.Struct{Fields: fields}, nil
}

// stateName is a state as Kestra and the engine name it: "SUCCESS".
func stateName(s kitev1.State) string {
	return strings.TrimPrefix(s.String(), "STATE_")
}

// coreState maps a state of the API to the engine's, so that the exit codes
// of the client commands are those of kite flow test (exitFor).
func coreState(s kitev1.State) execution.State {
	return execution.State(stateName(s))
}

// localTime formats a timestamp in local time; "-" when unset.
func localTime(ts *timestamppb.Timestamp, layout string) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(layout)
}

// humanDuration is a duration a person reads at a glance: 3ms, 0.2s, 12.5s,
// 4m05s, 2h03m, 3d04h.
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	d = d.Round(time.Hour)
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// labelsText formats labels as k=v, comma-separated.
func labelsText(ls []*kitev1.Label) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.GetKey() + "=" + l.GetValue()
	}
	return strings.Join(parts, ", ")
}

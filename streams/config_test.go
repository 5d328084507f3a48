package streams

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"
	"go.yaml.in/yaml/v3"
)

func validConfig(brokers ...string) Config {
	c := Defaults()
	c.Brokers = append([]string{"127.0.0.1:9092"}, brokers...)
	return c
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(pem, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none: valid
	}{
		{"defaults with a broker", func(*Config) {}, nil},
		{"no brokers", func(c *Config) { c.Brokers = nil }, []string{"brokers: must list at least one"}},
		{"broker without port", func(c *Config) { c.Brokers = []string{"kafka"} }, []string{`brokers[0]: "kafka" is not host:port`}},
		{"bad prefix and partitions", func(c *Config) { c.TopicPrefix = "kite/"; c.Partitions = 0 },
			[]string{"topic_prefix:", "partitions: must be at least 1"}},
		{"bad compression", func(c *Config) { c.Compression = "brotli" }, []string{`compression: "brotli" is not one of`}},
		{"negative linger, tiny batch", func(c *Config) { c.ProducerLinger = -time.Second; c.ProducerBatchMaxBytes = 10 },
			[]string{"producer_linger", "producer_batch_max_bytes"}},
		{"bad sasl mechanism", func(c *Config) { c.SASL = SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"} },
			[]string{`sasl.mechanism: "GSSAPI" is not one of`}},
		{"scram without credentials", func(c *Config) { c.SASL.Mechanism = SASLScramSHA512 },
			[]string{"sasl.username: must be set", "sasl.password: must be set"}},
		{"credentials without mechanism", func(c *Config) { c.SASL.Username = "u" }, []string{"sasl.mechanism: is empty"}},
		{"plain ok", func(c *Config) { c.SASL = SASLConfig{Mechanism: SASLPlain, Username: "u", Password: "p"} }, nil},
		{"tls files missing", func(c *Config) {
			c.TLS = TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "nope.pem"), CertFile: pem}
		}, []string{"tls.ca_file: cannot read", "tls.cert_file and tls.key_file must be set together"}},
		{"tls file is a dir", func(c *Config) { c.TLS = TLSConfig{Enabled: true, CAFile: dir} }, []string{"is a directory"}},
		{"tls fields while disabled", func(c *Config) { c.TLS.CAFile = pem }, []string{"tls.enabled: is false"}},
		{"tls ok", func(c *Config) { c.TLS = TLSConfig{Enabled: true, CAFile: pem} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.modify(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, missing %q", err, w)
				}
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
brokers: [a:9092, b:9092]
topic_prefix: prod.kite.
producer_linger: 25ms
compression: zstd
sasl: {mechanism: SCRAM-SHA-256, username: u, password: p}
`
	c := Defaults()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ProducerLinger != 25*time.Millisecond || c.Partitions != 6 || c.ClientID != "kite" || c.Topic(TopicLogs) != "prod.kite.logs" {
		t.Errorf("decoded %+v", c)
	}
}

// newFake starts an in-memory kfake cluster for the test.
func newFake(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// newClient builds a client from cfg.ClientOpts.
func newClient(t testing.TB, cfg Config, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, err := cfg.ClientOpts(zaptest.NewLogger(t), extra...)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestClientOpts(t *testing.T) {
	tests := []struct {
		name  string
		fake  []kfake.Opt
		sasl  SASLConfig
		codec string
	}{
		{name: "plaintext lz4", codec: "lz4"},
		{name: "plaintext none", codec: "none"},
		{name: "zstd", codec: "zstd"},
		{name: "gzip", codec: "gzip"},
		{name: "snappy", codec: "snappy"},
		{name: "sasl plain", codec: "lz4", sasl: SASLConfig{Mechanism: SASLPlain, Username: "kite", Password: "secret"},
			fake: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "kite", "secret")}},
		{name: "sasl scram-sha-256", codec: "lz4", sasl: SASLConfig{Mechanism: SASLScramSHA256, Username: "kite", Password: "secret"},
			fake: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "kite", "secret")}},
		{name: "sasl scram-sha-512", codec: "lz4", sasl: SASLConfig{Mechanism: SASLScramSHA512, Username: "kite", Password: "secret"},
			fake: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "kite", "secret")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, append(tt.fake, kfake.SeedTopics(1, "t"))...)
			cfg := Defaults()
			cfg.Brokers = fake.ListenAddrs()
			cfg.SASL = tt.sasl
			cfg.Compression = tt.codec
			reg := prometheus.NewRegistry()
			cl := newClient(t, cfg, WithMetrics(reg), kgo.ConsumeTopics("t"))

			ctx := t.Context()
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("hello")}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			fetches := cl.PollRecords(ctx, 1)
			if err := fetches.Err(); err != nil {
				t.Fatalf("poll: %v", err)
			}
			if recs := fetches.Records(); len(recs) != 1 || string(recs[0].Value) != "hello" {
				t.Fatalf("consumed %v, want one record \"hello\"", recs)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, mf := range mfs {
				found = found || strings.HasPrefix(mf.GetName(), "kite_")
			}
			if !found {
				t.Error("no kite_* kprom metrics registered")
			}
		})
	}
}

func TestClientOptsWrongPassword(t *testing.T) {
	fake := newFake(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "kite", "secret"))
	cfg := Defaults()
	cfg.Brokers = fake.ListenAddrs()
	cfg.SASL = SASLConfig{Mechanism: SASLScramSHA256, Username: "kite", Password: "wrong"}
	cl := newClient(t, cfg)
	if err := cl.Ping(t.Context()); err == nil {
		t.Fatal("Ping with a wrong password succeeded")
	}
}

func TestClientOptsRejectsInvalidConfig(t *testing.T) {
	if _, err := (Config{}).ClientOpts(nil); err == nil || !strings.Contains(err.Error(), "brokers") {
		t.Fatalf("ClientOpts(Config{}) error = %v, want one naming brokers", err)
	}
}

package streams

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"
)

// SASL mechanisms accepted in SASLConfig.Mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Compression codecs accepted in Config.Compression.
var compressionCodecs = map[string]func() kgo.CompressionCodec{
	"none":   kgo.NoCompression,
	"snappy": kgo.SnappyCompression,
	"lz4":    kgo.Lz4Compression,
	"zstd":   kgo.ZstdCompression,
	"gzip":   kgo.GzipCompression,
}

// Config is the Kafka connection and topic layout shared by every role that
// talks to the queue. Start from Defaults(), decode YAML over it, then call
// Validate.
type Config struct {
	// Brokers are the seed brokers, as host:port.
	Brokers []string `yaml:"brokers"`
	// ClientID is sent to the brokers and labels metrics. Default "kite".
	ClientID string `yaml:"client_id"`
	// TopicPrefix is prepended to every topic name. Default "kite.".
	TopicPrefix string `yaml:"topic_prefix"`
	// Partitions is the partition count of topics created by EnsureTopics.
	// Default 6. Existing co-partitioned topics keep their count.
	Partitions int32 `yaml:"partitions"`
	// TransactionalIDPrefix prefixes the transactional IDs of exactly-once
	// processors. Default "kite".
	TransactionalIDPrefix string `yaml:"transactional_id_prefix"`

	TLS  TLSConfig  `yaml:"tls"`
	SASL SASLConfig `yaml:"sasl"`

	// SessionTimeout is how long a consumer group member may be silent
	// before the group gives its partitions to others: how long the jobs of a
	// killed worker, or the partitions of a killed executor, wait. Default
	// 10s; the broker bounds it (group.min.session.timeout.ms, 6s by default).
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// ProducerLinger is how long a partition waits for more records before
	// sending a batch. Default 10ms.
	ProducerLinger time.Duration `yaml:"producer_linger"`
	// ProducerBatchMaxBytes caps one record batch; it must not exceed the
	// topics' max.message.bytes. Default 1000012 (Kafka's default).
	ProducerBatchMaxBytes int32 `yaml:"producer_batch_max_bytes"`
	// Compression is none, snappy, lz4, zstd or gzip. Default lz4.
	Compression string `yaml:"compression"`
}

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of CAs to trust instead of the system pool.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key (mTLS);
	// both or neither.
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASLConfig authenticates to the brokers. An empty Mechanism disables SASL.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// Defaults returns a Config with every default set and no brokers.
func Defaults() Config {
	return Config{
		ClientID:              "kite",
		TopicPrefix:           "kite.",
		Partitions:            6,
		TransactionalIDPrefix: "kite",
		SessionTimeout:        10 * time.Second,
		ProducerLinger:        10 * time.Millisecond,
		ProducerBatchMaxBytes: 1000012,
		Compression:           "lz4",
	}
}

// Kafka topic names are at most 249 characters of [a-zA-Z0-9._-].
var topicChars = regexp.MustCompile(`^[a-zA-Z0-9._-]*$`)

// Validate returns every problem in c at once, each naming the YAML field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	if len(c.Brokers) == 0 {
		bad("brokers", "must list at least one broker as host:port")
	}
	for i, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			bad(fmt.Sprintf("brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if c.ClientID == "" {
		bad("client_id", "must not be empty")
	}
	if !topicChars.MatchString(c.TopicPrefix) {
		bad("topic_prefix", "%q may only contain letters, digits, '.', '_' and '-'", c.TopicPrefix)
	}
	if n := len(c.TopicPrefix) + maxTopicBaseLen; n > 249 {
		bad("topic_prefix", "is %d characters long; topic names would exceed Kafka's 249", len(c.TopicPrefix))
	}
	if c.Partitions < 1 {
		bad("partitions", "must be at least 1, got %d", c.Partitions)
	}
	if c.TransactionalIDPrefix == "" {
		bad("transactional_id_prefix", "must not be empty")
	}
	if c.SessionTimeout < time.Second {
		bad("session_timeout", "must be at least 1s, got %s", c.SessionTimeout)
	}
	if c.ProducerLinger < 0 {
		bad("producer_linger", "must not be negative, got %s", c.ProducerLinger)
	}
	if c.ProducerBatchMaxBytes < 1024 {
		bad("producer_batch_max_bytes", "must be at least 1024, got %d", c.ProducerBatchMaxBytes)
	}
	if _, ok := compressionCodecs[c.Compression]; !ok {
		bad("compression", "%q is not one of none, snappy, lz4, zstd, gzip", c.Compression)
	}

	t := c.TLS
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify) {
		bad("tls.enabled", "is false but other tls fields are set; set tls.enabled: true or remove them")
	}
	for _, f := range []struct{ field, path string }{
		{"tls.ca_file", t.CAFile}, {"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			bad(f.field, "cannot read %s: %v", f.path, errors.Unwrap(err))
		} else if st.IsDir() {
			bad(f.field, "%s is a directory, not a PEM file", f.path)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls.cert_file", "tls.cert_file and tls.key_file must be set together")
	}

	s := c.SASL
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			bad("sasl.mechanism", "is empty but sasl.username or sasl.password is set; use one of %s, %s, %s", SASLPlain, SASLScramSHA256, SASLScramSHA512)
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.Username == "" {
			bad("sasl.username", "must be set with sasl.mechanism %s", s.Mechanism)
		}
		if s.Password == "" {
			bad("sasl.password", "must be set with sasl.mechanism %s", s.Mechanism)
		}
	default:
		bad("sasl.mechanism", "%q is not one of %s, %s, %s", s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}

	return errors.Join(errs...)
}

// ClientOpts is the one place where kgo options are built. It returns the
// connection, authentication, producer and logging options for c, followed
// by extra (later options win, so extra may override, e.g. kgo.ClientID).
// Role-specific options (consumer group, transactional ID, topics) are passed
// as extra by the processors in this package.
func (c Config) ClientOpts(logger *zap.Logger, extra ...kgo.Opt) ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid kafka config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.WithLogger(kzap.New(logger.Named("kafka"))),
		kgo.ProducerLinger(c.ProducerLinger),
		kgo.SessionTimeout(c.SessionTimeout),
		kgo.ProducerBatchMaxBytes(c.ProducerBatchMaxBytes),
		kgo.ProducerBatchCompression(compressionCodecs[c.Compression]()),
	}
	if c.TLS.Enabled {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch c.SASL.Mechanism {
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha512Mechanism()))
	}
	return append(opts, extra...), nil
}

func (t TLSConfig) config() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // explicit opt-in from config
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading tls.cert_file and tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// WithMetrics returns a kgo option that records the client's metrics
// (kprom, namespace "kite", labelled with the client ID) in reg. Pass it as
// an extra option to ClientOpts, once per client: kprom registers its
// collectors when the client is created, so two clients sharing reg must
// have different client IDs (override with kgo.ClientID in extra) or the
// registration panics.
func WithMetrics(reg prometheus.Registerer) kgo.Opt {
	return kgo.WithHooks(kprom.NewMetrics("kite", kprom.Registerer(reg), kprom.WithClientLabel()))
}

// TransactionalID is the transactional ID of one exactly-once processor
// instance, e.g. TransactionalID("executor") → "kite-executor".
func (c Config) TransactionalID(name string) string {
	return strings.TrimSuffix(c.TransactionalIDPrefix, "-") + "-" + name
}

package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kiteflow/kite/services/api"
	"github.com/kiteflow/kite/services/executor"
	"github.com/kiteflow/kite/services/indexer"
	"github.com/kiteflow/kite/services/scheduler"
	"github.com/kiteflow/kite/services/worker"
	"github.com/kiteflow/kite/streams"
)

// Config is Kite's whole configuration: one YAML file, with environment
// overrides (KITE_<SECTION>_<FIELD>, e.g. KITE_KAFKA_BROKERS), mapped to the
// Config of each package.
type Config struct {
	// DataDir is where standalone keeps the embedded broker's data and the
	// executor's state. Default ".kite".
	DataDir string `yaml:"data_dir"`
	// BrokerPort is the port of standalone's embedded broker at 127.0.0.1;
	// 0 picks a free one. Unused when kafka.brokers is set.
	BrokerPort int `yaml:"broker_port"`
	// MetricsAddr serves /metrics and /healthz in processes without the API
	// role (the API serves them on its HTTP address). Empty disables it.
	MetricsAddr string `yaml:"metrics_addr"`
	// HealthAddr serves the standard gRPC health service (grpc.health.v1)
	// for Kubernetes probes: "" is readiness, "liveness" liveness, and
	// "kite.<role>" each role. Empty (the default) disables it.
	HealthAddr string `yaml:"health_addr"`
	// Pprof serves Go's profiles (net/http/pprof) under /debug/pprof/ on
	// the metrics address, or the API's HTTP address in a process with the
	// API role. Off by default: a profile costs CPU while it is taken, and
	// the goroutine dump shows what the process is doing to whoever can
	// reach the port.
	Pprof bool `yaml:"pprof"`
	// Log configures the server's logs.
	Log       LogConfig        `yaml:"log"`
	Kafka     streams.Config   `yaml:"kafka"`
	API       api.Config       `yaml:"api"`
	Executor  executor.Config  `yaml:"executor"`
	Worker    worker.Config    `yaml:"worker"`
	Scheduler scheduler.Config `yaml:"scheduler"`
	// Repository is where the indexer writes and the SearchService reads.
	Repository RepositoryConfig `yaml:"repository"`
	Indexer    indexer.Config   `yaml:"indexer"`
	// Storage is internal storage (files, claim-checked values).
	Storage StorageConfig `yaml:"storage"`
}

// Repository types.
const (
	RepositoryEmbedded      = "embedded"
	RepositoryElasticsearch = "elasticsearch"
)

// RepositoryConfig chooses and configures the repository.
type RepositoryConfig struct {
	// Type is embedded (an index in data_dir; standalone only) or
	// elasticsearch. Default: embedded in standalone, elasticsearch
	// otherwise.
	Type string `yaml:"type"`
	// Retention deletes logs and events older than this. 0 keeps them.
	Retention time.Duration `yaml:"retention"`
	// Elasticsearch configures type elasticsearch.
	Elasticsearch ElasticsearchConfig `yaml:"elasticsearch"`
}

// ElasticsearchConfig is the connection to Elasticsearch 8 or OpenSearch 2.
type ElasticsearchConfig struct {
	// URLs of the cluster's nodes, e.g. https://es.example:9200.
	URLs []string `yaml:"urls"`
	// Flavor is elasticsearch (default) or opensearch.
	Flavor             string `yaml:"flavor"`
	Username           string `yaml:"username"`
	Password           string `yaml:"password"`
	APIKey             string `yaml:"api_key"`
	CACertFile         string `yaml:"ca_cert_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	// IndexPrefix starts the name of every index. Default "kite-".
	IndexPrefix string `yaml:"index_prefix"`
	// Shards and Replicas of the indices Kite creates.
	Shards   int `yaml:"shards"`
	Replicas int `yaml:"replicas"`
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is console (for people) or json (for log collectors). Default console.
	Format string `yaml:"format"`
}

// Defaults returns the configuration with every default set.
func Defaults() Config {
	return Config{
		DataDir:     ".kite",
		MetricsAddr: "localhost:9464",
		Log:         LogConfig{Level: "info", Format: "console"},
		Kafka:       streams.Defaults(),
		API:         api.Defaults(),
		Executor:    executor.Defaults(),
		Worker:      worker.Defaults(),
		Scheduler:   scheduler.Defaults(),
		Indexer:     indexer.Defaults(),
		Storage:     defaultStorage(),
		Repository: RepositoryConfig{Retention: 30 * 24 * time.Hour,
			Elasticsearch: ElasticsearchConfig{Flavor: "elasticsearch", IndexPrefix: "kite-", Shards: 1, Replicas: 1}},
	}
}

// Validate reports every problem at once, each with its YAML path.
func (c Config) Validate(roles Roles) error {
	var errs []error
	add := func(section string, err error) {
		if err != nil {
			for _, e := range unjoin(err) {
				errs = append(errs, fmt.Errorf("%s.%w", section, e))
			}
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not one of console, json", c.Log.Format))
	}
	if roles.Standalone && c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: standalone needs a data directory"))
	}
	kafka := c.Kafka
	if roles.Standalone && len(kafka.Brokers) == 0 {
		kafka.Brokers = []string{"127.0.0.1:0"} // the embedded broker's address is known at start
	}
	add("kafka", kafka.Validate())
	if roles.Has(RoleAPI) {
		add("api", c.API.Validate())
	}
	if roles.Has(RoleExecutor) {
		add("executor", c.Executor.Validate())
	}
	if roles.Has(RoleWorker) {
		add("worker", c.Worker.Validate())
	}
	if roles.Has(RoleScheduler) {
		add("scheduler", c.Scheduler.Validate())
	}
	for _, e := range c.Storage.validate() {
		errs = append(errs, fmt.Errorf("storage.%w", e))
	}
	if roles.Has(RoleIndexer) || roles.Has(RoleAPI) {
		for _, e := range c.Repository.validate(roles) {
			errs = append(errs, fmt.Errorf("repository.%w", e))
		}
	}
	return errors.Join(errs...)
}

// repositoryType is the configured type, or the default for the roles.
func (c Config) repositoryType(roles Roles) string {
	if c.Repository.Type != "" {
		return c.Repository.Type
	}
	if roles.Standalone {
		return RepositoryEmbedded
	}
	return RepositoryElasticsearch
}

func (r RepositoryConfig) validate(roles Roles) []error {
	var errs []error
	if r.Retention < 0 {
		errs = append(errs, errors.New("retention: must not be negative"))
	}
	typ := Config{Repository: r}.repositoryType(roles)
	switch typ {
	case RepositoryEmbedded:
		if !roles.Standalone {
			errs = append(errs, errors.New("type: embedded is only for standalone: the embedded index lives in one process; use elasticsearch"))
		}
	case RepositoryElasticsearch:
		es := r.Elasticsearch
		if len(es.URLs) == 0 && roles.Has(RoleIndexer) {
			errs = append(errs, errors.New("elasticsearch.urls: the indexer role needs the search cluster's URLs (KITE_REPOSITORY_ELASTICSEARCH_URLS)"))
		}
		if es.Flavor != "elasticsearch" && es.Flavor != "opensearch" {
			errs = append(errs, fmt.Errorf("elasticsearch.flavor: %q is not one of elasticsearch, opensearch", es.Flavor))
		}
		if es.Shards < 1 || es.Replicas < 0 {
			errs = append(errs, errors.New("elasticsearch: shards must be at least 1 and replicas not negative"))
		}
	default:
		errs = append(errs, fmt.Errorf("type: %q is not one of embedded, elasticsearch", typ))
	}
	return errs
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Load reads the YAML file at path (none when path is empty) over the
// defaults, then applies the environment overrides in env ("KEY=value"
// entries, as os.Environ gives). Unknown keys in the file and unknown
// KITE_ variables are errors.
func Load(path string, env []string) (Config, error) {
	cfg := Defaults()
	if path != "" {
		src, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("reading the config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(src))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// EnvPrefix starts the environment variables that override the config.
const EnvPrefix = "KITE_"

// envIgnored are KITE_ variables that are not config overrides.
var envIgnored = map[string]bool{"KITE_SERVER": true, "KITE_CONFIG": true, "KITE_REAL_KAFKA": true,
	"KITE_PROP_SEED": true, "KITE_PROP_CASES": true}

// applyEnv sets the fields named by KITE_<PATH> variables: the YAML path in
// upper case with "_" between levels (KITE_KAFKA_BROKERS,
// KITE_WORKER_CONCURRENCY). Lists are comma-separated.
func applyEnv(cfg *Config, env []string) error {
	fields := map[string]reflect.Value{}
	collectFields(reflect.ValueOf(cfg).Elem(), "KITE", fields)
	var errs []error
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) || envIgnored[k] {
			continue
		}
		f, found := fields[k]
		if !found {
			continue // other tools' KITE_ variables (KITE_KAFKA_BROKERS of the tests…)
		}
		if err := setField(f, v); err != nil {
			errs = append(errs, fmt.Errorf("environment %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// EnvNames lists the environment variables that override the config.
func EnvNames() []string {
	cfg := Defaults()
	fields := map[string]reflect.Value{}
	collectFields(reflect.ValueOf(&cfg).Elem(), "KITE", fields)
	out := make([]string, 0, len(fields))
	for k := range fields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func collectFields(v reflect.Value, prefix string, out map[string]reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		key := prefix + "_" + strings.ToUpper(name)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(time.Time{}) {
			collectFields(fv, key, out)
			continue
		}
		out[key] = fv
	}
}

func setField(f reflect.Value, s string) error {
	if f.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment")
		}
		var items []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

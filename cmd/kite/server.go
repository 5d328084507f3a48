package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"

	"github.com/kiteflow/kite/services/api"
	"github.com/kiteflow/kite/services/app"
)

func newServerCmd() *cobra.Command {
	var (
		configPath string
		dataDir    string
		applyDir   string
	)
	cmd := &cobra.Command{
		Use:   "server ROLES",
		Short: "Run Kite's server roles: standalone, or a comma list of api,executor,worker,scheduler,indexer",
		Long: `Run Kite's server roles in this process until interrupted (SIGINT/SIGTERM stop
the roles in reverse order, each finishing its in-flight work).

ROLES is standalone (every role, with an embedded Kafka-protocol broker and an
embedded search index persisted in --data-dir), or a comma list of roles sharing
a Kafka cluster (and an Elasticsearch or OpenSearch cluster for search):
  api        the gRPC API (flows, executions, logs, triggers, search), webhooks and /metrics
  executor   runs the executions' state machine (exactly-once, on Kafka)
  worker     runs the tasks
  scheduler  fires schedule triggers
  indexer    projects the topics into the search repository (repository.elasticsearch.urls)

The configuration is one YAML file (--config or KITE_CONFIG) over the defaults,
with environment overrides KITE_<SECTION>_<FIELD> (KITE_KAFKA_BROKERS=host:9092,
KITE_WORKER_CONCURRENCY=16); check it with 'kite config verify'.`,
		Example: `  kite server standalone --data-dir .kite --apply examples/flows
  KITE_KAFKA_BROKERS=kafka:9092 kite server executor,worker
  KITE_KAFKA_BROKERS=kafka:9092 KITE_REPOSITORY_ELASTICSEARCH_URLS=http://es:9200 kite server api,indexer`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			roles, err := app.ParseRoles(args[0])
			if err != nil {
				return err
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if dataDir != "" {
				cfg.DataDir = dataDir
			}
			logger, err := newLogger(cfg.Log, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer func() { _ = logger.Sync() }()
			a, err := app.New(cfg, roles, logger)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			select {
			case err := <-done:
				return err
			case <-a.Started():
			}
			out := cmd.OutOrStdout()
			if applyDir != "" {
				lines, err := a.ApplyDir(ctx, applyDir)
				for _, l := range lines {
					fmt.Fprintln(out, "flow", l)
				}
				if err != nil {
					fmt.Fprintf(out, "some flows of %s were not applied:\n%v\n", applyDir, err)
				}
			}
			printRunning(out, a, roles, cfg)
			return <-done
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", os.Getenv("KITE_CONFIG"), "YAML configuration file (default $KITE_CONFIG; none: defaults and environment)")
	f.StringVar(&dataDir, "data-dir", "", "where standalone keeps its broker data and executor state (overrides data_dir; default .kite)")
	f.StringVar(&applyDir, "apply", "", "once started, apply the flow files of this folder (api or executor role)")
	return cmd
}

func printRunning(out io.Writer, a *app.App, roles app.Roles, cfg app.Config) {
	fmt.Fprintf(out, "\nKite is running (%s). Stop it with Ctrl-C.\n", roles)
	grpcAddr, httpAddr := a.APIAddrs()
	if grpcAddr != "" {
		fmt.Fprintf(out, "  gRPC API  %s\n", grpcAddr)
		fmt.Fprintf(out, "  HTTP      http://%s  (/metrics, /healthz, /webhooks/{namespace}/{flow}/{key})\n", httpAddr)
	}
	broker := a.BrokerAddr()
	if roles.Standalone && len(cfg.Kafka.Brokers) == 0 {
		broker += fmt.Sprintf("  (embedded, data in %s)", cfg.DataDir)
	}
	fmt.Fprintf(out, "  Kafka     %s\n", broker)
	if grpcAddr == "" {
		return
	}
	server := ""
	if cfg.API.GRPCAddr != api.Defaults().GRPCAddr {
		server = " --server " + grpcAddr
	}
	fmt.Fprintf(out, `
Try, in another terminal:
  kite flow list%[1]s
  kite execution run%[1]s kite.examples hello-world --input name=you --follow
  kite flow apply%[1]s my-flow.yaml
  kite logs tail%[1]s --execution ID
`, server)
}

// loadConfig reads the configuration file (if any) and the environment.
func loadConfig(path string) (app.Config, error) {
	cfg, err := app.Load(path, os.Environ())
	if err != nil {
		return cfg, err
	}
	return cfg, nil
}

func newLogger(c app.LogConfig, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	if c.Format == "json" {
		encoder = zapcore.NewJSONEncoder(enc)
	} else {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.AddSync(w), level)), nil
}

func newConfigCmd() *cobra.Command {
	cfgCmd := group("config", "Check Kite's server configuration")
	var (
		configPath string
		rolesArg   string
		show       bool
	)
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the configuration file and environment overrides; print every problem",
		Long: `Load the configuration (--config or KITE_CONFIG, then KITE_<SECTION>_<FIELD>
environment overrides) and check it for the roles given, reporting every problem
at once with its YAML path. Unknown keys are errors. Exit 0 when valid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			roles, err := app.ParseRoles(rolesArg)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if err := cfg.Validate(roles); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			out := cmd.OutOrStdout()
			if show {
				b, err := yaml.Marshal(cfg)
				if err != nil {
					return err
				}
				_, _ = out.Write(b)
				return nil
			}
			src := "defaults"
			if configPath != "" {
				src = configPath
			}
			fmt.Fprintf(out, "configuration OK for %s (%s, environment overrides applied)\n", roles, src)
			return nil
		},
	}
	verify.Flags().StringVar(&configPath, "config", os.Getenv("KITE_CONFIG"), "YAML configuration file (default $KITE_CONFIG)")
	verify.Flags().StringVar(&rolesArg, "roles", app.Standalone, "roles the configuration is for (standalone or a comma list)")
	verify.Flags().BoolVar(&show, "print", false, "print the effective configuration as YAML")
	env := &cobra.Command{
		Use:   "env",
		Short: "List the environment variables that override the configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), strings.Join(app.EnvNames(), "\n"))
			return nil
		},
	}
	cfgCmd.AddCommand(verify, env)
	return cfgCmd
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/kiteflow/kite/streams"
)

func newDevCmd() *cobra.Command {
	dev := group("dev", "Tools for developing Kite and flows locally")
	dev.AddCommand(newDevBrokerCmd())
	return dev
}

func newDevBrokerCmd() *cobra.Command {
	var (
		dataDir    string
		port       int
		partitions int32
		topics     bool
		sync       bool
		verbose    bool
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka-protocol broker, persisted in a data dir, until interrupted",
		Long: `Run the embedded single-node Kafka-protocol broker (franz-go's kfake) that
'kite server standalone' uses, listening on 127.0.0.1. Its topics, records and
consumer-group offsets are kept in --data-dir and restored on the next start.

Inspect it with kcat (Debian package kcat):
  kcat -b 127.0.0.1:9092 -L
  kcat -b 127.0.0.1:9092 -C -t kite.execution-events -o beginning -e`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			level := zap.NewAtomicLevelAt(zap.InfoLevel)
			if verbose {
				level.SetLevel(zap.DebugLevel)
			}
			zc := zap.NewProductionConfig()
			zc.Level = level
			zc.Encoding = "console"
			zc.EncoderConfig = zap.NewDevelopmentEncoderConfig()
			logger, err := zc.Build()
			if err != nil {
				return err
			}
			defer func() { _ = logger.Sync() }()

			b, err := streams.StartBroker(ctx, streams.BrokerConfig{
				DataDir: dataDir, Port: port, Partitions: partitions, SyncWrites: sync, Logger: logger,
			})
			if err != nil {
				return err
			}
			defer func() { _ = b.Close() }()

			if topics {
				cfg := streams.Defaults()
				cfg.Brokers = []string{b.Addr()}
				cfg.Partitions = partitions
				opts, err := cfg.ClientOpts(logger, kgo.ClientID("kite-dev-broker"))
				if err != nil {
					return err
				}
				cl, err := kgo.NewClient(opts...)
				if err != nil {
					return err
				}
				err = streams.EnsureTopics(ctx, kadm.NewClient(cl), cfg)
				cl.Close()
				if err != nil {
					return fmt.Errorf("creating kite topics: %w", err)
				}
			}

			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "kafka broker listening on %s (data dir %s)\n", b.Addr(), dataDir)
			fmt.Fprintf(out, "inspect it: kcat -b %s -L\n", b.Addr())
			<-ctx.Done()
			fmt.Fprintln(out, "stopping broker")
			return b.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "data/kafka", "directory where the broker keeps its topics, records and offsets")
	f.IntVar(&port, "port", 9092, "port to listen on at 127.0.0.1 (0: any free port)")
	f.Int32Var(&partitions, "partitions", 6, "partition count of the topics the broker creates")
	f.BoolVar(&topics, "create-topics", true, "create Kite's topics (prefix kite.) if missing")
	f.BoolVar(&sync, "sync-writes", false, "fsync every write (survives power loss; slower)")
	f.BoolVar(&verbose, "verbose", false, "log the broker's debug messages")
	return cmd
}

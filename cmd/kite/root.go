package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "kite",
		Short: "Kite runs declarative YAML workflows on Kafka, Elasticsearch and Google Cloud Storage",
		Long: `Kite runs declarative YAML flows (tasks, inputs, triggers, retries, flowable tasks)
compatible with Kestra's flow language.

Start with:
  kite server standalone --apply DIR  run every role with an embedded broker, apply flows
  kite execution run NS FLOW --follow run a flow on the server and follow it
  kite flow validate FILE_OR_DIR...   check flows and print every problem with file:line:column
  kite flow test FILE                 run a flow in-process, without a server
  kite search executions 'state:FAILED' --since 24h   search what ran
  kite flow schema > flow.schema.json JSON Schema for editor completion`,
		SilenceUsage:  true,
		SilenceErrors: true, // main prints the error once
	}
	root.AddCommand(newFlowCmd(), newVersionCmd())
	root.AddCommand(newDevCmd(), newServerCmd(), newConfigCmd())
	root.AddCommand(newExecutionCmd(), newLogsCmd(), newSearchCmd(), newStatsCmd(), newBenchCmd())
	return root
}

// group is a command that only holds subcommands. Unlike cobra's default,
// which prints help and exits 0, an unknown subcommand is an error with
// suggestions.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,

		SuggestionsMinimumDistance: 2,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return fmt.Errorf("%s (run '%s --help')", msg, cmd.CommandPath())
		},
	}
}

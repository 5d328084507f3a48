package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
)

func newFlowCmd() *cobra.Command {
	cmd := group("flow", "Work with flow files: validate them, list the types, print the JSON Schema")
	cmd.AddCommand(newFlowValidateCmd(), newFlowTestCmd(), newFlowSchemaCmd(), newFlowTypesCmd(), newFlowApplyCmd(), newFlowListCmd(), newFlowGetCmd(), newFlowDeleteCmd())
	return cmd
}

// newParser returns the flow parser with the built-in types and the
// expression syntax check.
func newParser() *flow.Parser {
	return &flow.Parser{Registry: tasks.Registry(), CheckExpr: expr.Default.Check}
}

func newFlowValidateCmd() *cobra.Command {
	var quiet, strict bool
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check flow files and report every problem as file:line:column: path: message",
		Long: `Check flow files (.yaml or .yml) and folders of them, recursively.

Every problem of every file is reported at once, compiler style:
  flows/hello.yaml:12:7: tasks[1].type: unknown task type "io.kestra.plugin.core.log.Lg"; did you mean "io.kestra.plugin.core.log.Log"?

Expressions that do not parse are warnings, as in Kestra where they fail the task that
renders them at run time; --strict makes every warning an error.

Exit status: 0 when every flow is valid, 1 when any is not (or a path cannot be read).`,
		Example: `  kite flow validate examples/flows
  kite flow validate hello.yaml other.yml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := flowFiles(args)
			if err != nil {
				return err
			}
			p := newParser()
			p.Strict = strict
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			invalid, problems, warnings := 0, 0, 0
			for _, file := range files {
				src, err := os.ReadFile(file)
				if err != nil {
					fmt.Fprintf(errOut, "%s: %v\n", file, err)
					invalid++
					continue
				}
				f, err := p.Parse(file, src)
				var diags flow.Diagnostics
				switch {
				case errors.As(err, &diags):
					invalid++
				case err != nil:
					invalid++
					fmt.Fprintf(errOut, "%s: %v\n", file, err)
				default:
					diags = f.Warnings
				}
				for _, d := range diags {
					if d.Warning {
						warnings++
					} else {
						problems++
					}
					fmt.Fprintln(errOut, d.String())
				}
				if err == nil && !quiet {
					fmt.Fprintf(out, "%s: ok (%s.%s, %d %s)\n", file, f.Namespace, f.ID, countTasks(f), plural(countTasks(f), "task", "tasks"))
				}
			}
			fmt.Fprintf(out, "%d %s checked: %d valid, %d invalid; %d %s, %d %s\n",
				len(files), plural(len(files), "flow", "flows"), len(files)-invalid, invalid,
				problems, plural(problems, "error", "errors"), warnings, plural(warnings, "warning", "warnings"))
			if invalid > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only problems and the summary")
	cmd.Flags().BoolVar(&strict, "strict", false, "treat warnings (expressions that do not parse) as errors")
	return cmd
}

func newFlowSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the flow language (for yaml-language-server and other editors)",
		Long: `Print the JSON Schema of Kite's flow language, generated from the registry of task,
trigger and condition types, so editors can complete and check flows.

With VS Code's YAML extension (yaml-language-server), save it and add to a flow file:
  # yaml-language-server: $schema=./flow.schema.json`,
		Example: `  kite flow schema > flow.schema.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := flow.JSONSchema(tasks.Registry())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(b, '\n'))
			return err
		},
	}
}

// flowFiles expands paths: files are taken as they are, folders are walked
// for .yaml and .yml files. The result is sorted within each folder.
func flowFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no .yaml or .yml files in this folder", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

func countTasks(f *flow.Flow) int {
	n := 0
	f.Walk(func(*flow.Task, string) bool { n++; return true })
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

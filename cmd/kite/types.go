package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiteflow/kite/core/plugin"
	"github.com/kiteflow/kite/core/tasks"
)

func newFlowTypesCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "types [NAME]",
		Short: "List the task, trigger and condition types, or show one type's properties",
		Long: `Without NAME, list every task, trigger and condition type Kite runs, with the Kestra
class names it accepts as aliases (--all adds the Kestra types Kite knows but does not run
yet). With NAME (a short name or any alias), show that type's properties.`,
		Example: `  kite flow types
  kite flow types for-each
  kite flow types io.kestra.plugin.core.flow.Pause`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg := tasks.Registry()
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				return describeType(out, reg, args[0])
			}
			for _, c := range []plugin.Category{plugin.CategoryTask, plugin.CategoryTrigger, plugin.CategoryCondition} {
				fmt.Fprintf(out, "%s types:\n", strings.ToUpper(string(c[:1]))+string(c[1:]))
				tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
				for _, t := range reg.Types(c) {
					if t.Unsupported != "" && !all {
						continue
					}
					note := ""
					if t.Unsupported != "" {
						note = "  (not supported yet)"
					}
					fmt.Fprintf(tw, "  %s\t%s%s\n", t.Name, strings.Join(t.Aliases, ", "), note)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, "Run 'kite flow types NAME' for a type's properties.")
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also list the Kestra types Kite does not run yet")
	return cmd
}

func describeType(w io.Writer, reg *plugin.Registry, name string) error {
	var t *plugin.Type
	for _, c := range []plugin.Category{plugin.CategoryTask, plugin.CategoryTrigger, plugin.CategoryCondition} {
		if found, ok := reg.Lookup(c, name); ok {
			t = found
			break
		}
	}
	if t == nil {
		var hints []string
		for _, c := range []plugin.Category{plugin.CategoryTask, plugin.CategoryTrigger, plugin.CategoryCondition} {
			hints = append(hints, reg.Suggest(c, name, 2)...)
		}
		msg := fmt.Sprintf("unknown type %q", name)
		if len(hints) > 0 {
			msg += "; did you mean " + strings.Join(hints, " or ") + "?"
		}
		return fmt.Errorf("%s (run 'kite flow types' for the list)", msg)
	}
	kind := string(t.Category)
	if t.Category == plugin.CategoryTask {
		kind = "runnable task"
		if t.Flowable {
			kind = "flowable task"
		}
	}
	fmt.Fprintf(w, "%s (%s)\n", t.Name, kind)
	if len(t.Aliases) > 0 {
		fmt.Fprintf(w, "  aliases: %s\n", strings.Join(t.Aliases, ", "))
	}
	if t.Description != "" {
		fmt.Fprintf(w, "  %s\n", t.Description)
	}
	if t.Unsupported != "" {
		fmt.Fprintf(w, "  not supported yet: %s\n", t.Unsupported)
		return nil
	}
	printProps(w, "Properties", t.Properties)
	printProps(w, "Outputs", t.Outputs)
	return nil
}

func printProps(w io.Writer, title string, props []plugin.Property) {
	if len(props) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, p := range props {
		var flags []string
		if p.Required {
			flags = append(flags, "required")
		}
		if p.Default != nil {
			flags = append(flags, fmt.Sprintf("default %v", p.Default))
		}
		if p.Schema != nil && p.Schema.Dynamic {
			flags = append(flags, "expressions")
		}
		if len(p.Aliases) > 0 {
			flags = append(flags, "alias "+strings.Join(p.Aliases, ", "))
		}
		if p.Deprecated != "" {
			flags = append(flags, "deprecated: "+p.Deprecated)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.Name, schemaName(p.Schema), strings.Join(flags, "; "), p.Description)
	}
	_ = tw.Flush()
}

func schemaName(s *plugin.Schema) string {
	if s == nil {
		return "any"
	}
	switch {
	case len(s.OneOf) > 0:
		parts := make([]string, len(s.OneOf))
		for i, alt := range s.OneOf {
			parts[i] = schemaName(alt)
		}
		return strings.Join(parts, "|")
	case s.Kind == plugin.KindList && s.Elem != nil:
		return "list of " + schemaName(s.Elem)
	case s.Kind == plugin.KindEnum:
		return strings.Join(s.Enum, "|")
	}
	return string(s.Kind)
}

package main

// kite flow apply, list, get and delete: the flows stored on a Kite server.

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"

	"github.com/kiteflow/kite/core/flow"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

func newFlowApplyCmd() *cobra.Command {
	var cf *clientFlags
	cmd := &cobra.Command{
		Use:   "apply PATH...",
		Short: "Store flow files on the Kite server, each as a new revision of its flow",
		Long: `Send flow files (.yaml or .yml) and folders of them, recursively, to the Kite server.
Each file is stored as a new revision of the flow it names (namespace and id); a file
identical to the flow's latest revision stores nothing and is reported unchanged:
  flows/hello.yaml: company.team.hello → revision 3
  flows/other.yaml: company.team.other → revision 1 (new)
  flows/same.yaml: company.team.same → revision 2 (unchanged)

The server validates every file; a file it refuses stores nothing and every problem
is printed compiler style, as kite flow validate does:
  flows/bad.yaml:12:7: tasks[1].type: unknown task type "io.kestra.plugin.core.log.Lg"

Every file is tried, even after one is refused. With --output json or yaml, the
server's answer for each file is printed instead (one JSON document per line).

Exit status: 0 when every file was applied, 1 when any was refused or could not be
read, or the server could not be reached.`,
		Example: `  kite flow apply examples/flows
  kite flow apply hello.yaml --server kite.example.com:7777
  KITE_SERVER=kite.example.com:7777 kite flow apply flows/ -o json | jq .flow.revision`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := flowFiles(args)
			if err != nil {
				return err
			}
			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			ctx, out, errOut := cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			p := &printer{w: out, format: cf.output, stream: true}
			var created, changed, unchanged, refused int
			for _, file := range files {
				src, err := os.ReadFile(file)
				if err != nil {
					fmt.Fprintf(errOut, "%s: %v\n", file, err)
					refused++
					continue
				}
				res, prev, err := applyFlow(ctx, c, src)
				switch {
				case isCode(err, codes.InvalidArgument):
					for _, line := range locatedProblems(file, err) {
						fmt.Fprintln(errOut, line)
					}
					refused++
					continue
				case isCode(err, codes.NotFound), isCode(err, codes.FailedPrecondition), isCode(err, codes.AlreadyExists):
					fmt.Fprintf(errOut, "%s: %v\n", file, c.apiError(err))
					refused++
					continue
				case err != nil:
					return c.apiError(err) // the server is unreachable or broken: the next file would fail alike
				}
				for _, w := range res.GetWarnings() {
					fmt.Fprintln(errOut, problemDiagnostic(file, w).String())
				}
				f := res.GetFlow()
				note := ""
				switch {
				case prev == f.GetRevision():
					unchanged++
					note = " (unchanged)"
				case prev == 0:
					created++
					note = " (new)"
				default:
					changed++
				}
				if !p.table() {
					if err := p.print(res); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(out, "%s: %s.%s → revision %d%s\n", file, f.GetNamespace(), f.GetId(), f.GetRevision(), note)
			}
			if p.table() && len(files) > 1 {
				fmt.Fprintf(out, "%d %s: %d new, %d changed, %d unchanged, %d refused\n",
					len(files), plural(len(files), "file", "files"), created, changed, unchanged, refused)
			}
			if refused > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cf = addClientFlags(cmd, false)
	return cmd
}

// applyFlow applies one flow source. The answer of Apply does not say whether
// the source changed, so the flow's latest revision is read first: prev is
// its number, 0 when the flow is new, -1 when the source does not name its
// flow plainly enough to look it up (the server then reports why).
func applyFlow(ctx context.Context, c *apiClient, src []byte) (res *kitev1.FlowServiceApplyResponse, prev int32, err error) {
	prev = -1
	var head struct {
		Namespace string `yaml:"namespace"`
		ID        string `yaml:"id"`
	}
	if yaml.Unmarshal(src, &head) == nil && head.Namespace != "" && head.ID != "" {
		uctx, cancel := c.unary(ctx)
		got, err := c.flows.Get(uctx, &kitev1.FlowServiceGetRequest{Namespace: head.Namespace, Id: head.ID})
		cancel()
		switch {
		case isCode(err, codes.NotFound):
			prev = 0
		case err != nil:
			return nil, 0, err
		default:
			prev = got.GetFlow().GetRevision()
		}
	}
	uctx, cancel := c.unary(ctx)
	defer cancel()
	res, err = c.flows.Apply(uctx, &kitev1.FlowServiceApplyRequest{Source: string(src)})
	return res, prev, err
}

// lineColumn splits the description of a field violation of Apply,
// "line:column: message".
var lineColumn = regexp.MustCompile(`(?s)^(\d+):(\d+): (.*)$`)

// locatedProblems formats the field violations of a refused Apply as
// file:line:column: path: message, one per problem.
func locatedProblems(file string, err error) []string {
	vs := violations(err)
	if len(vs) == 0 {
		return []string{file + ": " + statusMessage(err)}
	}
	lines := make([]string, len(vs))
	for i, v := range vs {
		d := flow.Diagnostic{File: file, Path: v.GetField(), Message: v.GetDescription()}
		if m := lineColumn.FindStringSubmatch(v.GetDescription()); m != nil {
			d.Line, _ = strconv.Atoi(m[1])
			d.Column, _ = strconv.Atoi(m[2])
			d.Message = m[3]
		}
		lines[i] = d.String()
	}
	return lines
}

func problemDiagnostic(file string, p *kitev1.Problem) flow.Diagnostic {
	return flow.Diagnostic{
		File: file, Line: int(p.GetLine()), Column: int(p.GetColumn()), Path: p.GetPath(), Message: p.GetMessage(),
		Unsupported: p.GetUnsupported(), Warning: p.GetSeverity() != kitev1.Severity_SEVERITY_ERROR,
	}
}

func newFlowListCmd() *cobra.Command {
	var cf *clientFlags
	cmd := &cobra.Command{
		Use:   "list [NAMESPACE_PREFIX]",
		Short: "List the flows stored on the Kite server, latest revisions",
		Long: `List the flows stored on the Kite server (their latest revisions), ordered by
namespace then id. A namespace prefix keeps the flows of that namespace and of the
namespaces under it: "company" lists company and company.team, not companyx.`,
		Example: `  kite flow list
  kite flow list company.team
  kite flow list -o json | jq -r '.flows[].id'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			req := &kitev1.FlowServiceListRequest{}
			if len(args) == 1 {
				req.NamespacePrefix = args[0]
			}
			all := &kitev1.FlowServiceListResponse{}
			for {
				uctx, cancel := c.unary(cmd.Context())
				page, err := c.flows.List(uctx, req)
				cancel()
				if err != nil {
					return c.apiError(err)
				}
				all.Flows = append(all.Flows, page.GetFlows()...)
				if page.GetNextPageToken() == "" {
					break
				}
				req.PageToken = page.GetNextPageToken()
			}
			p := &printer{w: cmd.OutOrStdout(), format: cf.output}
			if !p.table() {
				return p.print(all)
			}
			if len(all.Flows) == 0 {
				if req.NamespacePrefix != "" {
					fmt.Fprintf(p.w, "no flows in namespace %s or under it\n", req.NamespacePrefix)
				} else {
					fmt.Fprintln(p.w, "no flows")
				}
				return nil
			}
			tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAMESPACE\tID\tREVISION\tUPDATED\tSTATUS\tDESCRIPTION")
			for _, f := range all.Flows {
				st := "enabled"
				if f.GetDisabled() {
					st = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", f.GetNamespace(), f.GetId(), f.GetRevision(),
					localTime(f.GetUpdateTime(), "2006-01-02 15:04:05"), st, firstLine(f.GetDescription(), 60))
			}
			return tw.Flush()
		},
	}
	cf = addClientFlags(cmd, false)
	return cmd
}

func newFlowGetCmd() *cobra.Command {
	var (
		cf       *clientFlags
		revision int32
		source   bool
	)
	cmd := &cobra.Command{
		Use:   "get NAMESPACE ID",
		Short: "Show a flow stored on the Kite server, or print its YAML source",
		Long: `Show a flow stored on the Kite server: its latest revision, or the one --revision
names. --source prints the YAML source alone, as it was applied, so that
  kite flow get company.team hello --source > hello.yaml
gives back the file.`,
		Example: `  kite flow get company.team hello
  kite flow get company.team hello --revision 2 --source
  kite flow get company.team hello -o yaml`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			req := &kitev1.FlowServiceGetRequest{Namespace: args[0], Id: args[1]}
			if cmd.Flags().Changed("revision") {
				req.Revision = &revision
			}
			uctx, cancel := c.unary(cmd.Context())
			defer cancel()
			res, err := c.flows.Get(uctx, req)
			if err != nil {
				return c.apiError(err)
			}
			f, out := res.GetFlow(), cmd.OutOrStdout()
			if source {
				src := f.GetSource()
				if src != "" && !strings.HasSuffix(src, "\n") {
					src += "\n"
				}
				_, err := fmt.Fprint(out, src)
				return err
			}
			p := &printer{w: out, format: cf.output}
			if !p.table() {
				return p.print(f)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Flow:\t%s.%s\n", f.GetNamespace(), f.GetId())
			fmt.Fprintf(tw, "Revision:\t%d\n", f.GetRevision())
			fmt.Fprintf(tw, "Updated:\t%s\n", localTime(f.GetUpdateTime(), "2006-01-02 15:04:05 MST"))
			switch {
			case f.GetDeleted():
				fmt.Fprintln(tw, "Status:\tdeleted")
			case f.GetDisabled():
				fmt.Fprintln(tw, "Status:\tdisabled")
			default:
				fmt.Fprintln(tw, "Status:\tenabled")
			}
			if len(f.GetLabels()) > 0 {
				fmt.Fprintf(tw, "Labels:\t%s\n", labelsText(f.GetLabels()))
			}
			if d := f.GetDescription(); d != "" {
				fmt.Fprintf(tw, "Description:\t%s\n", firstLine(d, 100))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().Int32Var(&revision, "revision", 0, "the revision to show (default: the latest)")
	cmd.Flags().BoolVar(&source, "source", false, "print only the flow's YAML source")
	cf = addClientFlags(cmd, false)
	return cmd
}

func newFlowDeleteCmd() *cobra.Command {
	var cf *clientFlags
	cmd := &cobra.Command{
		Use:   "delete NAMESPACE ID",
		Short: "Delete a flow on the Kite server (its revisions and executions are kept)",
		Long: `Delete a flow on the Kite server: it is no longer listed nor triggered, and
executions cannot be created for it. Its revisions and executions are kept.`,
		Example: `  kite flow delete company.team hello`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			uctx, cancel := c.unary(cmd.Context())
			defer cancel()
			res, err := c.flows.Delete(uctx, &kitev1.FlowServiceDeleteRequest{Namespace: args[0], Id: args[1]})
			if err != nil {
				return c.apiError(err)
			}
			p := &printer{w: cmd.OutOrStdout(), format: cf.output}
			if !p.table() {
				return p.print(res)
			}
			fmt.Fprintf(p.w, "deleted %s.%s\n", args[0], args[1])
			return nil
		},
	}
	cf = addClientFlags(cmd, false)
	return cmd
}

// firstLine is the first line of s, cut to max characters.
func firstLine(s string, limit int) string {
	s, _, more := strings.Cut(strings.TrimSpace(s), "\n")
	r := []rune(s)
	switch {
	case len(r) > limit:
		return string(r[:limit-1]) + "…"
	case more:
		return s + " …"
	}
	return s
}

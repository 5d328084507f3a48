package main

// kite execution files: the files an execution keeps in the server's internal
// storage (FILE inputs, files its tasks wrote), listed and downloaded through
// the FileService.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc/codes"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

func newExecutionFilesCmd(cf *clientFlags) *cobra.Command {
	var (
		download bool
		names    []string
		dir      string
	)
	cmd := &cobra.Command{
		Use:   "files ID",
		Short: "List the files of an execution (FILE inputs, files its tasks wrote), or download them",
		Long: `List the files an execution keeps in the server's internal storage: the files given
to its FILE inputs (inputs/INPUT/FILE), the files its tasks wrote
(tasks/TASK/TASK_RUN/…) and outputs too large to travel with the execution. Each
row has the file's NAME (its path in the execution's folder), SIZE, UPDATED (local
time) and URI (what the flow's expressions see). --output json or yaml prints
the list as a document.

--download saves every file, or only those --file names (repeat it), at
DIR/ID/NAME, DIR being --dir (the current folder by default). A file is written
under a temporary name and renamed once complete, so a file at its final name is
whole; one already there is replaced. A download cut by a server restart resumes
where it stopped. On a terminal each file shows a progress bar on standard error;
otherwise a line per file saved. With --output json or yaml, standard output gets
the files saved as a document.`,
		Example: `  kite execution files 01M80SCHM88R6E4WXZJ1WV4
  kite execution files 01M80SCHM88R6E4WXZJ1WV4 --download --dir ./out
  kite execution files 01M80SCHM88R6E4WXZJ1WV4 --download --file inputs/data/rows.csv
  kite execution files 01M80SCHM88R6E4WXZJ1WV4 -o json | jq -r '.files[].uri'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !download && (len(names) > 0 || cmd.Flags().Changed("dir")) {
				return errors.New("--file and --dir choose what --download saves and where: add --download")
			}
			if download && dir == "" {
				return errors.New("--dir is empty: give the folder to save the files in (. for the current one)")
			}
			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			files := kitev1.NewFileServiceClient(c.conn)
			uctx, cancel := c.unary(cmd.Context())
			res, err := files.List(uctx, &kitev1.FileServiceListRequest{ExecutionId: id})
			cancel()
			if err != nil {
				return c.apiError(err)
			}
			p := &printer{w: cmd.OutOrStdout(), format: cf.output}
			if !download {
				if !p.table() {
					return p.print(res)
				}
				return printFiles(p.w, id, res.GetFiles())
			}
			chosen, err := chooseFiles(id, res.GetFiles(), names)
			if err != nil {
				return err
			}
			d := &downloader{c: c, files: files, id: id, errOut: cmd.ErrOrStderr(), tty: isTerminal(cmd.ErrOrStderr())}
			saved, total, err := d.saveAll(cmd.Context(), filepath.Join(dir, id), chosen)
			summary := fmt.Sprintf("saved %d %s (%s) in %s", len(saved), plural(len(saved), "file", "files"), humanBytes(total), filepath.Join(dir, id))
			if err != nil {
				if len(saved) > 0 {
					fmt.Fprintln(d.errOut, summary)
				}
				return err
			}
			if !p.table() {
				fmt.Fprintln(d.errOut, summary)
				return p.print(&kitev1.FileServiceListResponse{Files: saved})
			}
			_, err = fmt.Fprintln(p.w, summary)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&download, "download", false, "save the files (every one, or those --file names) at DIR/ID/NAME")
	f.StringArrayVar(&names, "file", nil, "with --download, save only this file: a NAME of the list (repeat it)")
	f.StringVar(&dir, "dir", ".", "with --download, the folder to save in; the files go to DIR/ID/NAME")
	return cmd
}

// printFiles prints the files as a table.
func printFiles(w io.Writer, id string, files []*kitev1.File) error {
	if len(files) == 0 {
		_, err := fmt.Fprintf(w, "execution %s has no files\n", id)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tUPDATED\tURI")
	for _, f := range files {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.GetName(), humanBytes(f.GetSize()), localTime(f.GetUpdated(), "2006-01-02 15:04:05"), f.GetUri())
	}
	return tw.Flush()
}

// chooseFiles returns the files named (all when names is empty), in the
// list's order, after checking that every one can be saved under the
// execution's folder: the names come from the server, and one that would
// leave the folder ("../x", "/etc/x") is refused before anything is saved.
func chooseFiles(id string, files []*kitev1.File, names []string) ([]*kitev1.File, error) {
	if !filepath.IsLocal(id) || strings.ContainsAny(id, `/\`) {
		return nil, fmt.Errorf("execution id %q cannot name a folder: it must be a plain name (no slash, not . or ..)", id)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("execution %s has no files to download", id)
	}
	chosen := files
	if len(names) > 0 {
		byName := make(map[string]*kitev1.File, len(files))
		for _, f := range files {
			byName[f.GetName()] = f
		}
		want := map[string]bool{}
		for _, n := range names {
			if byName[n] == nil {
				return nil, fmt.Errorf("execution %s has no file %q (--file takes a NAME of the list: kite execution files %s)", id, n, id)
			}
			want[n] = true
		}
		chosen = nil
		for _, f := range files {
			if want[f.GetName()] {
				chosen = append(chosen, f)
			}
		}
	}
	for _, f := range chosen {
		if !filepath.IsLocal(filepath.FromSlash(f.GetName())) {
			return nil, fmt.Errorf("the server named a file of execution %s %q, which would be saved outside its folder: nothing was downloaded", id, f.GetName())
		}
	}
	return chosen, nil
}

// downloader saves files of one execution.
type downloader struct {
	c      *apiClient
	files  kitev1.FileServiceClient
	id     string
	errOut io.Writer
	tty    bool // errOut is a terminal: progress bars
}

// saveAll saves the files under folder, one after another, and returns
// those saved and their size; it stops at the first failure.
func (d *downloader) saveAll(ctx context.Context, folder string, files []*kitev1.File) ([]*kitev1.File, int64, error) {
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return nil, 0, fmt.Errorf("creating the folder to save the files in: %w", err)
	}
	// Every file is opened through root, which refuses paths that leave
	// the folder, symbolic links included.
	root, err := os.OpenRoot(folder)
	if err != nil {
		return nil, 0, fmt.Errorf("opening the folder to save the files in: %w", err)
	}
	defer func() { _ = root.Close() }()
	var saved []*kitev1.File
	var total int64
	for _, f := range files {
		got, err := d.save(ctx, root, f)
		if err != nil {
			if ctx.Err() != nil {
				return saved, total, fmt.Errorf("interrupted while downloading %s", f.GetName())
			}
			return saved, total, fmt.Errorf("downloading %s: %w", f.GetName(), err)
		}
		saved, total = append(saved, got), total+got.GetSize()
	}
	return saved, total, nil
}

// save downloads one file to a temporary file beside its final place, then
// renames it there, and returns the file as the server last described it.
func (d *downloader) save(ctx context.Context, root *os.Root, f *kitev1.File) (*kitev1.File, error) {
	name := filepath.FromSlash(f.GetName())
	if parent := filepath.Dir(name); parent != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return nil, err
		}
	}
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+"."+rand.Text()[:8]+".part")
	out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			_ = out.Close()
			_ = root.Remove(tmp)
		}
	}()
	bar := d.progress(f)
	got, err := d.fetch(ctx, f, out, bar)
	if err != nil {
		bar.abort()
		return nil, err
	}
	done = true
	if err := out.Close(); err != nil {
		_ = root.Remove(tmp)
		return nil, err
	}
	if err := root.Rename(tmp, name); err != nil {
		_ = root.Remove(tmp)
		return nil, err
	}
	bar.finish(got)
	return got, nil
}

// fetch streams the file's content into out. A stream the server ends with
// UNAVAILABLE after sending something (a restart) is resumed from the bytes
// written, a few times, as the FileService asks.
func (d *downloader) fetch(ctx context.Context, f *kitev1.File, out io.Writer, bar *fileProgress) (*kitev1.File, error) {
	const maxFailures = 8
	var (
		written  int64
		first    *kitev1.File // as the first stream described it
		failures int
		backoff  = 200 * time.Millisecond
	)
	for {
		described, n, err := d.stream(ctx, f.GetUri(), written, out, bar)
		written += n
		if first == nil {
			first = described
		} else if described != nil && (described.GetSize() != first.GetSize() || !described.GetUpdated().AsTime().Equal(first.GetUpdated().AsTime())) {
			return nil, errors.New("the file changed on the server while it was being downloaded; run the command again")
		}
		if err == nil {
			if first == nil || written != first.GetSize() {
				return nil, fmt.Errorf("the server ended the download after %s of %s", humanBytes(written), humanBytes(first.GetSize()))
			}
			return first, nil
		}
		if n > 0 || described != nil {
			failures, backoff = 0, 200*time.Millisecond
		}
		failures++
		if first == nil || !isCode(err, codes.Unavailable) || failures > maxFailures || ctx.Err() != nil {
			return nil, d.c.apiError(err)
		}
		bar.resuming(written, statusMessage(err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// stream makes one Download call from offset and writes the content it
// receives to out. It returns the file as the stream's first message
// described it (nil when none came), and how many bytes it wrote.
func (d *downloader) stream(ctx context.Context, uri string, offset int64, out io.Writer, bar *fileProgress) (*kitev1.File, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a write that fails ends the stream
	stream, err := d.files.Download(ctx, &kitev1.FileServiceDownloadRequest{ExecutionId: d.id, Uri: uri, Offset: offset})
	if err != nil {
		return nil, 0, err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, 0, err
	}
	described := first.GetFile()
	if described == nil {
		return nil, 0, errors.New("the server's first message holds no file description")
	}
	bar.start(described.GetSize(), offset)
	var written int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return described, written, nil
		}
		if err != nil {
			return described, written, err
		}
		n, err := out.Write(msg.GetData())
		written += int64(n)
		bar.add(int64(n))
		if err != nil {
			return described, written, fmt.Errorf("writing the file: %w", err)
		}
	}
}

// fileProgress shows the download of one file on standard error: a
// progress bar on a terminal, otherwise a line once it is saved.
type fileProgress struct {
	d    *downloader
	name string
	bar  *progressbar.ProgressBar // on a terminal, once started
}

func (d *downloader) progress(f *kitev1.File) *fileProgress {
	return &fileProgress{d: d, name: f.GetName()}
}

// start begins (or, resuming, moves) the bar of a file of size bytes, offset
// of which are written already.
func (p *fileProgress) start(size, offset int64) {
	if !p.d.tty || size == 0 {
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(p.d.errOut),
			progressbar.OptionSetDescription(p.name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.d.errOut) }),
		)
	}
	_ = p.bar.Set64(offset)
}

func (p *fileProgress) add(n int64) {
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

func (p *fileProgress) resuming(written int64, why string) {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintf(p.d.errOut, "lost the download of %s at %s (%s); resuming\n", p.name, humanBytes(written), cleanTransportMessage(why))
}

func (p *fileProgress) finish(f *kitev1.File) {
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	fmt.Fprintf(p.d.errOut, "saved %s (%s)\n", p.name, humanBytes(f.GetSize()))
}

func (p *fileProgress) abort() {
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.d.errOut)
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// humanBytes is a size a person reads at a glance: 512 B, 1.5 KiB, 12.3 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

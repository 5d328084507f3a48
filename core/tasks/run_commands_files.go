package tasks

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/kiteflow/kite/core/storage"
)

// writeInputFiles renders inputFiles (a map of file name to content, or an
// expression rendering to one or to its JSON text) and writes each file
// into the working directory, creating its folders.
func writeInputFiles(ctx context.Context, rc *RunContext) error {
	v, err := rc.Value(ctx, "inputFiles")
	if err != nil {
		return err
	}
	files, err := toStringMap("inputFiles", v)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		content := files[name]
		rel, err := localPath(name)
		if err != nil {
			return fmt.Errorf("inputFiles[%q]: %w", name, err)
		}
		dst := filepath.Join(rc.WorkDir, rel)
		if storage.IsURI(content) {
			// A file of internal storage (a FILE input, an earlier task's
			// output file) is streamed into the working directory.
			if err := rc.Files.Download(ctx, content, dst); err != nil {
				return fmt.Errorf("inputFiles[%q]: %w", name, err)
			}
			continue
		}
		if strings.HasPrefix(content, "kestra://") || strings.HasPrefix(content, "nsfile://") {
			return fmt.Errorf("inputFiles[%q]: %s is a Kestra storage URI; Kite's files are kite:/// URIs (a FILE input, a task's output file)", name, abbreviate(content, 120))
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("inputFiles[%q]: creating its folder: %w", name, err)
		}
		if err := os.WriteFile(dst, []byte(content), 0o644); err != nil {
			return fmt.Errorf("inputFiles[%q]: writing it: %w", name, err)
		}
	}
	return nil
}

// localPath checks that name is a relative path inside the working
// directory and returns it cleaned, in the OS's form.
func localPath(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty file name")
	}
	if path.IsAbs(name) || filepath.IsAbs(name) {
		return "", fmt.Errorf("%q is an absolute path; use a path relative to the working directory", name)
	}
	p := filepath.FromSlash(path.Clean(name))
	if !filepath.IsLocal(p) {
		return "", fmt.Errorf("%q leaves the working directory; use a path inside it", name)
	}
	return p, nil
}

// outputGlob is one outputFiles pattern, compiled.
type outputGlob struct {
	pattern string
	re      *regexp.Regexp
}

// compileOutputGlobs compiles outputFiles patterns: globs relative to the
// working directory, with Java's glob syntax that Kestra uses (* and ?
// within a path segment, ** across segments, [abc], [!abc], {a,b}).
func compileOutputGlobs(patterns []string) ([]outputGlob, error) {
	out := make([]outputGlob, 0, len(patterns))
	for i, p := range patterns {
		clean := strings.TrimPrefix(p, "./")
		if clean == "" || strings.HasPrefix(clean, "/") || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(clean, "/../") {
			return nil, fmt.Errorf("outputFiles[%d]: %q is not a pattern relative to the working directory", i, p)
		}
		re, err := globRegexp(clean)
		if err != nil {
			return nil, fmt.Errorf("outputFiles[%d]: invalid glob %q: %w", i, p, err)
		}
		out = append(out, outputGlob{pattern: p, re: re})
	}
	return out, nil
}

// globRegexp translates a glob to an anchored regular expression matching
// slash-separated relative paths.
func globRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	inGroup := false
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch c {
		case '*':
			if i+1 < len(glob) && glob[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '{':
			if inGroup {
				return nil, fmt.Errorf("nested { at offset %d", i)
			}
			inGroup = true
			b.WriteString("(?:")
		case '}':
			if !inGroup {
				b.WriteString(`\}`)
				continue
			}
			inGroup = false
			b.WriteString(")")
		case ',':
			if inGroup {
				b.WriteString("|")
			} else {
				b.WriteString(",")
			}
		case '[':
			end := strings.IndexByte(glob[i+1:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [ at offset %d", i)
			}
			class := glob[i+1 : i+1+end]
			if class == "" || class == "!" {
				return nil, fmt.Errorf("empty character class at offset %d", i)
			}
			b.WriteString("[")
			switch class[0] {
			case '!':
				// A negated class never matches the separator either.
				b.WriteString("^/")
				class = class[1:]
			case '^':
				// Literal in a glob, negation in a regular expression.
				b.WriteString(`\^`)
				class = class[1:]
			}
			b.WriteString(strings.NewReplacer(`\`, `\\`, `[`, `\[`).Replace(class))
			b.WriteString("]")
			i += end + 1
		case '\\':
			if i+1 == len(glob) {
				return nil, fmt.Errorf("trailing \\")
			}
			i++
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if inGroup {
		return nil, fmt.Errorf("unclosed {")
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("translating it to %s: %w", b.String(), err)
	}
	return re, nil
}

// collectOutputFiles returns the regular files of the working directory
// matching any of globs, by slash-separated relative path. Symbolic links
// are not followed nor kept, so a command cannot export files from outside
// its working directory.
//
// The values are the files' absolute paths.
func collectOutputFiles(workDir string, globs []outputGlob) (map[string]string, error) {
	out := map[string]string{}
	if len(globs) == 0 {
		return out, nil
	}
	workDir, err := filepath.Abs(workDir)
	if err != nil {
		return nil, fmt.Errorf("outputFiles: %w", err)
	}
	err = filepath.WalkDir(workDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(workDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, g := range globs {
			if g.re.MatchString(rel) {
				out[rel] = p
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outputFiles: listing the working directory: %w", err)
	}
	return out, nil
}

// uploadOutputFiles stores the files collectOutputFiles found in internal
// storage, each as the task run's file of the same relative name, and
// returns their URIs by name (the outputFiles output, as in Kestra).
func uploadOutputFiles(ctx context.Context, rc *RunContext, files map[string]string) (map[string]any, error) {
	out := make(map[string]any, len(files))
	for _, name := range slices.Sorted(maps.Keys(files)) {
		uri, err := rc.Files.PutFile(ctx, name, files[name])
		if err != nil {
			return nil, fmt.Errorf("outputFiles: %w", err)
		}
		out[name] = uri
	}
	return out, nil
}

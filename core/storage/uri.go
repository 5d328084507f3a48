package storage

import (
	"fmt"
	"path"
	"strings"
)

// Scheme is the scheme of internal storage URIs.
const Scheme = "kite"

// uriPrefix starts every internal storage URI: the scheme, no host, and
// an absolute path.
const uriPrefix = Scheme + ":///"

// IsURI reports whether s looks like an internal storage URI (it may still
// be invalid: Parse says).
func IsURI(s string) bool { return strings.HasPrefix(s, uriPrefix) }

// Parse checks uri and returns its path, relative and slash-separated
// ("company/team/flow/executions/…"). A valid path has no empty, "." or
// ".." segment, no backslash or NUL, and does not end in a slash: it can
// be joined under a folder or a bucket prefix without leaving it.
func Parse(uri string) (string, error) {
	p, ok := strings.CutPrefix(uri, uriPrefix)
	if !ok {
		return "", fmt.Errorf("%w %q: it must start with %s", ErrInvalidURI, uri, uriPrefix)
	}
	if err := checkPath(p); err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrInvalidURI, uri, err)
	}
	return p, nil
}

// Root is the folder of every object: List(ctx, Root) lists them all.
const Root = uriPrefix

// ParsePrefix is Parse for a folder URI, which may end in a slash. The
// path returned has no trailing slash; it is "" for Root.
func ParsePrefix(prefix string) (string, error) {
	if prefix == Root {
		return "", nil
	}
	return Parse(strings.TrimSuffix(prefix, "/"))
}

// URI is the internal storage URI of a relative, slash-separated path.
func URI(p string) string { return uriPrefix + p }

func checkPath(p string) error {
	if p == "" {
		return fmt.Errorf("the path is empty")
	}
	if strings.ContainsAny(p, "\\\x00") {
		return fmt.Errorf("the path holds a backslash or a NUL byte")
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("the path has an empty segment (a leading, doubled or trailing slash)")
		case ".", "..":
			return fmt.Errorf("the path has a %q segment", seg)
		}
	}
	return nil
}

// ExecutionPrefix is the folder of every file of an execution: the
// namespace as a path (dots become slashes), the flow, the execution.
// Deleting it purges the execution's files. Invalid arguments give a URI
// ParsePrefix refuses.
func ExecutionPrefix(namespace, flowID, executionID string) string {
	p := uriPrefix + strings.ReplaceAll(namespace, ".", "/") + "/" + flowID + "/executions/" + executionID
	if executionID == "" {
		// "…/executions/" would be a valid prefix: the folder of every
		// execution of the flow, one DeletePrefix away from purging them
		// all. "…/executions//" is refused.
		return p + "/"
	}
	return p
}

// InputFile is the URI of the file given for a FILE input of an execution.
// Only the base name of fileName is kept.
func InputFile(namespace, flowID, executionID, input, fileName string) (string, error) {
	name, err := baseName(fileName)
	if err != nil {
		return "", fmt.Errorf("input %s: %w", input, err)
	}
	return join(ExecutionPrefix(namespace, flowID, executionID), "inputs", input, name)
}

// TaskFile is the URI of a file a task run wrote; name may hold folders
// ("reports/summary.csv") but must stay inside the task run's folder.
func TaskFile(namespace, flowID, executionID, taskID, taskRunID, name string) (string, error) {
	return join(ExecutionPrefix(namespace, flowID, executionID), "tasks", taskID, taskRunID, name)
}

// OutputValue is the URI where a task run's output value too large for a
// Kafka record is kept (claim-check), per attempt so that a retried attempt
// never changes what an earlier one recorded.
func OutputValue(namespace, flowID, executionID, taskID, taskRunID string, attempt int, key string) (string, error) {
	return join(ExecutionPrefix(namespace, flowID, executionID), "tasks", taskID, taskRunID,
		fmt.Sprintf("outputs-%d", attempt), key+".json")
}

// InputValue is the URI where an execution's input value too large for a
// Kafka record is kept (claim-check).
func InputValue(namespace, flowID, executionID, input string) (string, error) {
	return join(ExecutionPrefix(namespace, flowID, executionID), "inputs-values", input+".json")
}

// Within reports whether uri is prefix or lies under it (at a path
// boundary). An invalid uri lies under nothing: "kite:///a/../b" is not
// within "kite:///a".
func Within(uri, prefix string) bool {
	if _, err := ParsePrefix(uri); err != nil {
		return false
	}
	prefix = strings.TrimSuffix(prefix, "/")
	return uri == prefix || strings.HasPrefix(uri, prefix+"/")
}

// join joins path elements under a URI and checks the result.
func join(base string, elems ...string) (string, error) {
	uri := base + "/" + strings.Join(elems, "/")
	if _, err := Parse(uri); err != nil {
		return "", err
	}
	return uri, nil
}

// baseName is the last element of a file name given by a user, which may
// be a Windows or POSIX path.
func baseName(fileName string) (string, error) {
	name := path.Base(strings.ReplaceAll(fileName, "\\", "/"))
	switch name {
	case "", ".", "..", "/":
		return "", fmt.Errorf("%q is not a file name", fileName)
	}
	return name, nil
}

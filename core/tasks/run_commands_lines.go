package tasks

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxLogLine is the longest line a command's output is logged as; a longer
// line is logged in pieces of this size.
const maxLogLine = 1 << 20

// scanLogLines is bufio.ScanLines, except that a line longer than limit is
// cut into pieces of at most limit bytes (at a UTF-8 boundary) instead of
// failing the scan. The scanner's buffer must hold limit+1 bytes, to see the
// newline after a line of exactly limit bytes.
func scanLogLines(limit int) bufio.SplitFunc {
	return func(data []byte, atEOF bool) (int, []byte, error) {
		if atEOF && len(data) == 0 {
			return 0, nil, nil
		}
		if i := bytes.IndexByte(data[:min(len(data), limit+1)], '\n'); i >= 0 {
			return i + 1, bytes.TrimSuffix(data[:i], []byte{'\r'}), nil
		}
		if len(data) > limit {
			// Cut before a rune that would not fit whole.
			n := limit
			for p := limit - 1; p >= 0 && p > limit-1-utf8.UTFMax; p-- {
				if utf8.RuneStart(data[p]) {
					if !utf8.FullRune(data[p:limit]) && p > 0 {
						n = p
					}
					break
				}
			}
			return n, data[:n], nil
		}
		if atEOF {
			return len(data), bytes.TrimSuffix(data, []byte{'\r'}), nil
		}
		return 0, nil, nil
	}
}

// outputCollector turns the lines a command writes into logs and outputs,
// as Kestra's log consumer does: a line ::{"outputs": {...}}:: sets
// outputs (merged into the vars output), its "logs" are logged, and the
// line itself is not logged; any other line is logged, at INFO from stdout
// and WARN from stderr. It is safe for concurrent use by the stdout and
// stderr readers.
type outputCollector struct {
	rc *RunContext

	mu     sync.Mutex
	vars   map[string]any
	stdout int
	stderr int
}

func newOutputCollector(rc *RunContext) *outputCollector {
	return &outputCollector{rc: rc, vars: map[string]any{}}
}

// consume logs every line of r until EOF, then drains r.
func (c *outputCollector) consume(r io.Reader, stderr bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLogLine+1)
	sc.Split(scanLogLines(maxLogLine))
	for sc.Scan() {
		c.line(sc.Text(), stderr)
	}
	if err := sc.Err(); err != nil {
		c.rc.Logf(LevelWarn, "reading the command's output: %v", err)
	}
	// Keep the writer from blocking whatever happened above.
	_, _ = io.Copy(io.Discard, r)
}

func (c *outputCollector) line(text string, stderr bool) {
	if payload, ok := outputMarker(text); ok {
		m, err := parseOutputMarker(payload)
		if err == nil {
			c.mu.Lock()
			for k, v := range m.Outputs {
				c.vars[k] = v
			}
			c.mu.Unlock()
			for _, l := range m.Logs {
				level, err := parseLevel("level", l.Level)
				if err != nil {
					level = LevelInfo
				}
				c.rc.Logf(level, "%s", l.Message)
			}
			// Metrics are not recorded yet: Kite has no metrics of task
			// runs. They are accepted so that Kestra scripts run unchanged.
			return
		}
		c.rc.Logf(LevelWarn, "ignoring an invalid ::{...}:: output line: %v", err)
		return
	}
	c.mu.Lock()
	if stderr {
		c.stderr++
	} else {
		c.stdout++
	}
	c.mu.Unlock()
	level := LevelInfo
	if stderr {
		level = LevelWarn
	}
	c.rc.Logf(level, "%s", text)
}

// counts returns the number of logged stdout and stderr lines.
func (c *outputCollector) counts() (stdout, stderr int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stdout, c.stderr
}

// outputVars returns the outputs set by ::{...}:: lines.
func (c *outputCollector) outputVars() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]any, len(c.vars))
	for k, v := range c.vars {
		out[k] = v
	}
	return out
}

// outputMarker returns the JSON of a line ::{...}::, Kestra's marker
// (^::(\{.*})::$).
func outputMarker(line string) (string, bool) {
	if len(line) < len("::{}::") || !strings.HasPrefix(line, "::{") || !strings.HasSuffix(line, "}::") {
		return "", false
	}
	return line[2 : len(line)-2], true
}

// markerPayload is the JSON object of an output marker line.
type markerPayload struct {
	Outputs map[string]any `json:"outputs"`
	Metrics []any          `json:"metrics"`
	Logs    []struct {
		Level   string `json:"level"`
		Message string `json:"message"`
	} `json:"logs"`
}

func parseOutputMarker(payload string) (*markerPayload, error) {
	dec := json.NewDecoder(strings.NewReader(payload))
	dec.UseNumber()
	var m markerPayload
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decoding %q: %w", abbreviate(payload, 200), err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decoding %q: text after the JSON object", abbreviate(payload, 200))
	}
	for k, v := range m.Outputs {
		m.Outputs[k] = normalizeJSONNumbers(v)
	}
	return &m, nil
}

// normalizeJSONNumbers replaces json.Number by int64 when integral and in
// range, float64 otherwise, so that {"a": 1} prints as 1 like in Kestra.
func normalizeJSONNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		// Out of float64 range: keep the digits.
		return x.String()
	case []any:
		for i, item := range x {
			x[i] = normalizeJSONNumbers(item)
		}
		return x
	case map[string]any:
		for k, item := range x {
			x[k] = normalizeJSONNumbers(item)
		}
		return x
	}
	return v
}

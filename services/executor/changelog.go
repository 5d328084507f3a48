package executor

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// StateEntry is an entry of the executor's state changelog, as a reader of
// the topic (the indexer) sees it: an execution's header, or one of its task
// runs (see the layout at the top of state.go).
type StateEntry struct {
	ExecutionID string
	// Header is the execution without its task runs; nil for a task run
	// entry and for a deletion.
	Header *kitev1.Execution
	// TaskRunKey identifies a task run entry within its execution (the
	// sequence number of the event that created it), for a task run entry.
	TaskRunKey string
	// TaskRun is the task run; nil for a header entry and for a deletion.
	TaskRun *kitev1.TaskRun
	// Deleted is set when the entry was removed (value nil).
	Deleted bool
}

// ParseStateEntry parses a state entry as streams.DecodeChangelog returns it
// (value nil for a deletion). ok is false for the entries that are not an
// execution's (flow sources, pending retries).
func ParseStateEntry(key, value []byte) (entry StateEntry, ok bool, err error) {
	rest, found := strings.CutPrefix(string(key), "x/")
	if !found {
		return StateEntry{}, false, nil
	}
	id, trKey, isTaskRun := strings.Cut(rest, "/r/")
	entry = StateEntry{ExecutionID: id, TaskRunKey: trKey, Deleted: value == nil}
	switch {
	case entry.Deleted:
	case isTaskRun:
		entry.TaskRun = &kitev1.TaskRun{}
		if err := proto.Unmarshal(value, entry.TaskRun); err != nil {
			return StateEntry{}, false, fmt.Errorf("execution %s: decoding task run entry %s: %w", id, trKey, err)
		}
	default:
		if len(value) < 8 {
			return StateEntry{}, false, fmt.Errorf("execution %s: header of %d bytes", id, len(value))
		}
		entry.Header = &kitev1.Execution{}
		if err := proto.Unmarshal(value[8:], entry.Header); err != nil {
			return StateEntry{}, false, fmt.Errorf("execution %s: decoding the header: %w", id, err)
		}
	}
	return entry, true, nil
}

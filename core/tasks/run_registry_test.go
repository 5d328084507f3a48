package tasks

import (
	"testing"

	"github.com/kiteflow/kite/core/plugin"
)

// Every runnable type Kite supports has a runner, and every runner is for
// such a type.
func TestRunnersCoverRunnableTypes(t *testing.T) {
	runners := Runners()
	r := Registry()
	for _, typ := range runnableTasks() {
		if _, ok := runners[typ.Name]; !ok {
			t.Errorf("runnable type %q has no runner", typ.Name)
		}
	}
	for name := range runners {
		typ, ok := r.Lookup(plugin.CategoryTask, name)
		switch {
		case !ok:
			t.Errorf("runner %q: no such task type", name)
		case typ.Name != name:
			t.Errorf("runner %q is keyed by an alias of %q", name, typ.Name)
		case typ.Flowable || typ.Unsupported != "":
			t.Errorf("runner %q: the type is not a supported runnable task", name)
		}
	}
}

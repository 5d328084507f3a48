package worker

import (
	"strings"
	"testing"

	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
)

func TestFlowCache(t *testing.T) {
	c := newFlowCache(&flow.Parser{Registry: tasks.Registry()}, 2)
	k1 := flowKey{"kite.test", "hello", 1}
	f1, err := c.get(k1, testFlow)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.get(k1, testFlow); again != f1 {
		t.Error("the same revision was parsed again")
	}

	// Another source under the same revision is parsed, not served stale.
	other := strings.Replace(testFlow, "id: say", "id: speak", 1)
	f1b, err := c.get(k1, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f1b.FindTask("speak"); !ok || f1b == f1 {
		t.Error("a changed source under the same revision was not parsed again")
	}

	// A revision that does not parse keeps its error.
	k2 := flowKey{"kite.test", "hello", 2}
	if _, err := c.get(k2, "tasks: ["); err == nil || !strings.Contains(err.Error(), "kite.test.hello revision 2 does not parse") {
		t.Errorf("broken revision: err = %v", err)
	}

	// The cache holds two revisions: a third evicts the least recently used.
	if _, err := c.get(k1, other); err != nil { // k1 used last
		t.Fatal(err)
	}
	k3 := flowKey{"kite.test", "hello", 3}
	if _, err := c.get(k3, testFlow); err != nil {
		t.Fatal(err)
	}
	if c.order.Len() != 2 || c.entries[k2] != nil || c.entries[k1] == nil || c.entries[k3] == nil {
		t.Errorf("after a third revision the cache holds %d entries (k1 %v, k2 %v, k3 %v), want k1 and k3",
			c.order.Len(), c.entries[k1] != nil, c.entries[k2] != nil, c.entries[k3] != nil)
	}
}

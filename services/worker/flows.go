package worker

import (
	"container/list"
	"fmt"
	"sync"

	"github.com/kiteflow/kite/core/flow"
)

// flowCacheSize bounds the parsed flow revisions a worker keeps.
const flowCacheSize = 256

// flowCache parses the flow sources jobs carry, once per revision, keeping
// the most recently used revisions. A revision that does not parse is kept
// too, with its error. It is safe for concurrent use; two attempts of a
// revision not cached yet may both parse it.
type flowCache struct {
	parser *flow.Parser
	max    int

	mu      sync.Mutex
	order   *list.List // of *flowEntry, most recently used first
	entries map[flowKey]*list.Element
}

type flowKey struct {
	namespace, id string
	revision      int32
}

func (k flowKey) String() string {
	return fmt.Sprintf("%s.%s revision %d", k.namespace, k.id, k.revision)
}

type flowEntry struct {
	key flowKey
	src string
	f   *flow.Flow
	err error
}

func newFlowCache(p *flow.Parser, size int) *flowCache {
	return &flowCache{parser: p, max: size, order: list.New(), entries: map[flowKey]*list.Element{}}
}

// get returns the parsed revision. The source is compared with the cached
// one, so that a revision number reused with another source (a flows
// topic rebuilt from scratch) is parsed again rather than run stale.
func (c *flowCache) get(key flowKey, src string) (*flow.Flow, error) {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		if e := el.Value.(*flowEntry); e.src == src {
			c.order.MoveToFront(el)
			c.mu.Unlock()
			return e.f, e.err
		}
	}
	c.mu.Unlock()

	f, err := c.parser.Parse(key.namespace+"/"+key.id+".yaml", []byte(src))
	if err != nil {
		err = fmt.Errorf("flow %s does not parse: %w", key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.order.Remove(el)
	}
	c.entries[key] = c.order.PushFront(&flowEntry{key: key, src: src, f: f, err: err})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*flowEntry).key)
	}
	return f, err
}

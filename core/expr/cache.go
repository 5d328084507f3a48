package expr

import (
	"container/list"
	"sync"
)

// lru is a bounded least-recently-used cache of parsed templates keyed by
// source. A nil *lru caches nothing.
type lru struct {
	mu    sync.Mutex
	limit int
	order *list.List // front is most recent; values are *lruEntry
	items map[string]*list.Element
}

type lruEntry struct {
	key string
	t   *Template
}

// maxCachedSource keeps huge one-off templates out of the cache.
const maxCachedSource = 64 << 10

func newLRU(limit int) *lru {
	if limit <= 0 {
		return nil
	}
	return &lru{limit: limit, order: list.New(), items: make(map[string]*list.Element, limit)}
}

func (c *lru) get(key string) (*Template, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry).t, true
}

func (c *lru) put(key string, t *Template) {
	if c == nil || len(key) > maxCachedSource {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruEntry{key: key, t: t})
	for c.order.Len() > c.limit {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruEntry).key)
	}
}

func (c *lru) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

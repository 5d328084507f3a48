package api

import (
	"container/list"
	"sync"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// executionCache keeps the last executions Get folded, each with the offset of
// the execution-events partition it was folded up to, so that the next Get of
// the same execution reads only what came after.
//
// Cost model. Without an entry, Get reads the execution's partition from the
// first record at or after its creation time less a minute, up to the
// partition's last stable offset: the work is proportional to the traffic of
// that partition since the execution was created (every execution on it, not
// only this one), small for a recent execution and growing with its age. An
// id that carries no creation time (not made by execution.NewExecutionID)
// costs a read of the whole partition. With an entry, Get reads only the
// records that arrived on the partition since the entry was made: Get right
// after Create (which fills the cache) or a client polling a running
// execution costs one offset listing and one short fetch, and nothing but
// the offset listing when the partition did not move. Every read is a Kafka
// client of its own (a metadata request and a connection to the partition's
// leader). An entry holds one execution in its protobuf form, so the cache
// holds at most size executions; the least recently used goes first. Entries
// are immutable: a Get converts one back to fold further events and stores
// the result as a new entry.
//
// Safe for concurrent use.
type executionCache struct {
	size int

	mu    sync.Mutex
	order *list.List // of *cacheEntry, most recently used first
	byID  map[string]*list.Element
}

// cacheEntry is one folded execution.
type cacheEntry struct {
	exec *kitev1.Execution // never modified once stored
	// next is the offset of the execution-events partition after the last
	// record folded: every event of the execution below it is in exec.
	next int64
}

// newExecutionCache returns a cache of at most size executions; size 0 keeps
// nothing.
func newExecutionCache(size int) *executionCache {
	return &executionCache{size: size, order: list.New(), byID: map[string]*list.Element{}}
}

// get returns the entry of execution id.
func (c *executionCache) get(id string) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byID[id]
	if !ok {
		return cacheEntry{}, false
	}
	c.order.MoveToFront(el)
	return *el.Value.(*cacheEntry), true
}

// put stores an entry, unless the one already there was folded further (two
// Gets of one execution may end in either order).
func (c *executionCache) put(e cacheEntry) {
	if c.size == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := e.exec.GetId()
	if el, ok := c.byID[id]; ok {
		c.order.MoveToFront(el)
		if cur := el.Value.(*cacheEntry); cur.next <= e.next {
			*cur = e
		}
		return
	}
	c.byID[id] = c.order.PushFront(&e)
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byID, last.Value.(*cacheEntry).exec.GetId())
	}
}

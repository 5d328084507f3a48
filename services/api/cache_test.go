package api

import (
	"testing"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

func TestExecutionCache(t *testing.T) {
	entry := func(id string, seq, next int64) cacheEntry {
		return cacheEntry{exec: &kitev1.Execution{Id: id, Seq: seq}, next: next}
	}
	c := newExecutionCache(2)
	c.put(entry("a", 1, 10))
	c.put(entry("b", 1, 11))
	if _, ok := c.get("a"); !ok { // a is now the most recently used
		t.Fatal("get(a) missed")
	}
	c.put(entry("c", 1, 12)) // evicts b
	if _, ok := c.get("b"); ok {
		t.Error("get(b) hit after two newer entries in a cache of 2")
	}
	c.put(entry("a", 3, 20))
	c.put(entry("a", 2, 15)) // folded less far: kept out
	if got, ok := c.get("a"); !ok || got.next != 20 || got.exec.GetSeq() != 3 {
		t.Errorf("get(a) = %v, %v; want the entry folded up to offset 20", got, ok)
	}

	off := newExecutionCache(0)
	off.put(entry("a", 1, 10))
	if _, ok := off.get("a"); ok {
		t.Error("a cache of size 0 kept an entry")
	}
}

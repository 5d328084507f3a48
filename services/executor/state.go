package executor

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// The state store of a partition holds, per execution:
//
//	x/<execution id>                     header: nonce (8 bytes) + kitev1.Execution without task runs
//	x/<execution id>/r/<created seq>     one kitev1.TaskRun per task run, in creation order
//	f/<namespace>/<flow id>/<revision>   the flow revision's source, for every revision run here
//	p/<execution id>                     a retry execution to create when its timer fires (eventv1.Command)
//
// A step writes the header and the task runs it touched, so its cost does
// not grow with the number of task runs. Timers are streams timers keyed
// t/<execution id>/<timer id> (the machine's), l/<execution id>/<task run
// id>/<attempt>/<worker id> (a worker's liveness) and p/<execution id>.

func headerKey(id string) []byte { return []byte("x/" + id) }

func taskRunPrefix(id string) []byte { return []byte("x/" + id + "/r/") }

func taskRunKey(id string, createdSeq int64) string {
	return fmt.Sprintf("x/%s/r/%012d", id, createdSeq)
}

func flowKey(namespace, id string, revision int) []byte {
	return fmt.Appendf(nil, "f/%s/%s/%d", namespace, id, revision)
}

// loaded is an execution as loaded from the store, with what saving it needs.
type loaded struct {
	e *execution.Execution
	f *flow.Flow
	// keys are the store keys of the task runs, by task run id.
	keys map[string]string
	// nonce is the header's write nonce: the cached copy is the store's
	// only while the nonces match (a transaction that aborted, or a
	// partition that moved away and back, leaves a different header).
	nonce uint64
}

// cache keeps loaded executions between records. It is only an
// optimization: every entry is checked against the stored header's nonce.
type cache struct {
	mu  sync.Mutex
	max int
	m   map[string]*loaded
}

func (c *cache) get(id string, nonce uint64) *loaded {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.m[id]; ok && l.nonce == nonce {
		return l
	}
	return nil
}

func (c *cache) put(l *loaded) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.e.Terminal() {
		// Ended executions are rarely stepped again; keep room for the live.
		delete(c.m, l.e.ID)
		return
	}
	if len(c.m) >= c.max {
		for k := range c.m { // drop an arbitrary entry
			delete(c.m, k)
			break
		}
	}
	c.m[l.e.ID] = l
}

func (c *cache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// load reads an execution; nil when the partition has none with the id.
func (p *processor) load(pc *streams.PartitionContext, id string) (*loaded, error) {
	hdr, ok, err := pc.Get(headerKey(id))
	if err != nil || !ok {
		return nil, err
	}
	if len(hdr) < 8 {
		return nil, fmt.Errorf("execution %s: header of %d bytes", id, len(hdr))
	}
	nonce := binary.BigEndian.Uint64(hdr)
	if l := p.cache.get(id, nonce); l != nil {
		return l, nil
	}
	var pe kitev1.Execution
	if err := proto.Unmarshal(hdr[8:], &pe); err != nil {
		return nil, fmt.Errorf("execution %s: decoding the header: %w", id, err)
	}
	e := codec.FromExecution(&pe)
	keys := map[string]string{}
	var decodeErr error
	err = pc.Range(taskRunPrefix(id), func(k, v []byte) bool {
		var ptr kitev1.TaskRun
		if decodeErr = proto.Unmarshal(v, &ptr); decodeErr != nil {
			decodeErr = fmt.Errorf("execution %s: decoding task run %s: %w", id, k, decodeErr)
			return false
		}
		tr := codec.FromTaskRun(&ptr)
		e.TaskRuns = append(e.TaskRuns, tr)
		keys[tr.ID] = string(k)
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, err
	}
	f, err := p.flowRevision(pc, e.Namespace, e.FlowID, e.FlowRevision)
	if err != nil {
		return nil, fmt.Errorf("execution %s: %w", id, err)
	}
	return &loaded{e: e, f: f, keys: keys, nonce: nonce}, nil
}

// save writes what the events changed: the header, and the task runs they
// created, changed or removed.
func (p *processor) save(pc *streams.PartitionContext, l *loaded, events []*execution.Event) error {
	touched := map[string]bool{}
	for _, ev := range events {
		switch {
		case ev.Type == execution.EvTaskRunCreated:
			l.keys[ev.TaskRun.ID] = taskRunKey(l.e.ID, ev.Seq)
			touched[ev.TaskRun.ID] = true
		case ev.Type == execution.EvTaskRunRemoved:
			if k, ok := l.keys[ev.TaskRunID]; ok {
				pc.Delete([]byte(k))
				delete(l.keys, ev.TaskRunID)
			}
			delete(touched, ev.TaskRunID)
		case ev.TaskRunID != "":
			touched[ev.TaskRunID] = true
		}
	}
	for id := range touched {
		tr, ok := l.e.TaskRun(id)
		if !ok {
			continue
		}
		ptr, err := codec.TaskRun(tr)
		if err != nil {
			return err
		}
		b, err := proto.Marshal(ptr)
		if err != nil {
			return fmt.Errorf("encoding task run %s: %w", id, err)
		}
		pc.Put([]byte(l.keys[id]), b)
	}
	pe, err := codec.ExecutionHeader(l.e)
	if err != nil {
		return err
	}
	b, err := proto.Marshal(pe)
	if err != nil {
		return fmt.Errorf("encoding execution %s: %w", l.e.ID, err)
	}
	var n [8]byte
	_, _ = rand.Read(n[:])
	l.nonce = binary.BigEndian.Uint64(n[:])
	pc.Put(headerKey(l.e.ID), append(n[:], b...))
	return nil
}

// flowRevision returns a flow revision run on this partition, parsed once.
func (p *processor) flowRevision(pc *streams.PartitionContext, namespace, id string, revision int) (*flow.Flow, error) {
	key := string(flowKey(namespace, id, revision))
	if f := p.parsed(key); f != nil {
		return f, nil
	}
	src, ok, err := pc.Get([]byte(key))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("flow %s.%s revision %d is not in the executor's state", namespace, id, revision)
	}
	return p.parse(key, string(src), revision)
}

// storeFlow keeps a revision's source in the state (once) and parses it.
func (p *processor) storeFlow(pc *streams.PartitionContext, namespace, id string, revision int, src string) (*flow.Flow, error) {
	key := flowKey(namespace, id, revision)
	_, ok, err := pc.Get(key)
	if err != nil {
		return nil, err
	}
	f, err := p.parse(string(key), src, revision)
	if err != nil {
		return nil, err
	}
	if f.Namespace != namespace || f.ID != id {
		return nil, fmt.Errorf("the source of flow %s.%s revision %d is flow %s.%s", namespace, id, revision, f.Namespace, f.ID)
	}
	if !ok {
		pc.Put(key, []byte(src))
	}
	return f, nil
}

func (p *processor) parsed(key string) *flow.Flow {
	p.flowsMu.Lock()
	defer p.flowsMu.Unlock()
	return p.flows[key]
}

func (p *processor) parse(key, src string, revision int) (*flow.Flow, error) {
	name := strings.TrimPrefix(key, "f/")
	f, err := p.parser.Parse(name, []byte(src))
	if err != nil {
		return nil, fmt.Errorf("parsing flow %s: %w", name, err)
	}
	f.Revision = revision
	p.flowsMu.Lock()
	defer p.flowsMu.Unlock()
	p.flows[key] = f
	return f, nil
}

package embedded

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"modernc.org/sqlite"
)

// Aggregations count rows in Go rather than with SQL's GROUP BY, which
// sorts every row through a temporary B-tree (about 1.3 µs a row here, 1.3 s
// for a million): the SQL function kite_agg(handle, a, b) hands each row's
// a and b to the Go accumulator registered under handle, in one pass over
// the index that the WHERE clause picks. Counting in a map costs a third of
// the sort.

// aggFunc is the name of the SQL function.
const aggFunc = "kite_agg"

// maxGroups bounds the distinct values one aggregation counts (the memory
// of a terms aggregation over a field with a value per document).
const maxGroups = 1 << 21

var (
	registerOnce sync.Once
	registerErr  error
	accumulators sync.Map // int64 → accumulator
	nextHandle   atomic.Int64
)

// registerAgg registers kite_agg with the driver, for every connection it
// opens afterwards.
func registerAgg() error {
	registerOnce.Do(func() {
		registerErr = sqlite.RegisterFunction(aggFunc, &sqlite.FunctionImpl{
			NArgs:        3,
			VolatileArgs: true, // accumulators copy the strings they keep
			MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) {
				return &aggStep{}, nil
			},
		})
	})
	return registerErr
}

// accumulator receives the rows of one aggregation.
type accumulator interface {
	// add takes a row's a and b; strings are only valid during the call.
	add(a, b driver.Value) error
}

// register makes acc the target of handle until the returned func is
// called.
func register(acc accumulator) (handle int64, unregister func()) {
	handle = nextHandle.Add(1)
	accumulators.Store(handle, acc)
	return handle, func() { accumulators.Delete(handle) }
}

// aggStep is one evaluation of kite_agg.
type aggStep struct{ acc accumulator }

func (s *aggStep) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	if s.acc == nil {
		h, _ := args[0].(int64)
		acc, ok := accumulators.Load(h)
		if !ok {
			return fmt.Errorf("%s: no accumulator %v", aggFunc, args[0])
		}
		s.acc = acc.(accumulator)
	}
	return s.acc.add(args[1], args[2])
}

func (*aggStep) WindowInverse(*sqlite.FunctionContext, []driver.Value) error {
	return errors.New(aggFunc + " is not a window function")
}

func (*aggStep) WindowValue(*sqlite.FunctionContext) (driver.Value, error) { return nil, nil }

func (*aggStep) Final(*sqlite.FunctionContext) {}

// groupKey is a group of counts: a bucket (0 when none) and a value.
type groupKey struct {
	bucket int64
	kind   byte // 0 NULL, 's' string, 'i' integer
	s      string
	i      int64
}

// groupCounts counts rows by (a, b): a an integer bucket, b the value of
// a Keyword, Enum or Bool column (or NULL).
type groupCounts struct {
	m map[groupKey]*int64
}

func newGroupCounts() *groupCounts { return &groupCounts{m: map[groupKey]*int64{}} }

func (g *groupCounts) add(a, b driver.Value) error {
	k := groupKey{}
	switch a := a.(type) {
	case int64:
		k.bucket = a
	case nil:
	default:
		return fmt.Errorf("%s: bucket %T", aggFunc, a)
	}
	switch b := b.(type) {
	case nil:
	case string:
		k.kind, k.s = 's', b
	case []byte:
		k.kind, k.s = 's', string(b)
	case int64:
		k.kind, k.i = 'i', b
	case float64:
		k.kind, k.s = 's', fmt.Sprint(b)
	default:
		return fmt.Errorf("%s: value %T", aggFunc, b)
	}
	// A lookup never keeps the (volatile) string; an insert keeps a copy.
	if n, ok := g.m[k]; ok {
		*n++
		return nil
	}
	if len(g.m) >= maxGroups {
		return fmt.Errorf("more than %d distinct values: narrow the query", maxGroups)
	}
	k.s = strings.Clone(k.s)
	n := int64(1)
	g.m[k] = &n
	return nil
}

// numbers collects the non-NULL values of a Number or Duration column.
type numbers struct {
	v []float64
}

func (n *numbers) add(a, _ driver.Value) error {
	switch a := a.(type) {
	case int64:
		n.v = append(n.v, float64(a))
	case float64:
		n.v = append(n.v, a)
	case nil:
	default:
		return fmt.Errorf("%s: number %T", aggFunc, a)
	}
	return nil
}

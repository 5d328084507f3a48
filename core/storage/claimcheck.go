package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// RefKey is the one key of a value kept in storage instead of inside a Kafka
// record (claim-check): {"$kiteRef": "kite:///…/outputs-1/value.json"}.
// Resolve puts the value back.
const RefKey = "$kiteRef"

// MaxResolveBytes bounds a claim-checked value read back into memory.
const MaxResolveBytes = 256 << 20

// Offload keeps values small enough for a Kafka record: when the JSON of
// values is larger than maxInline bytes, its largest entries are stored as
// JSON files, at the URI uriOf gives for their key, and replaced by
// references until the rest fits. values itself is not changed; what is
// returned may share entries with it. Storing is idempotent, so a retried
// Offload of the same values at the same URIs is safe.
func Offload(ctx context.Context, store Storage, values map[string]any, maxInline int, uriOf func(key string) (string, error)) (map[string]any, error) {
	if len(values) == 0 {
		return values, nil
	}
	type entry struct {
		key  string
		json []byte
	}
	entries := make([]entry, 0, len(values))
	total := 2
	for k, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", k, err)
		}
		entries = append(entries, entry{k, b})
		total += len(k) + len(b) + 4
	}
	if total <= maxInline {
		return values, nil
	}
	if store == nil {
		return nil, fmt.Errorf("the values take %d bytes, more than the %d a Kafka record may carry, and there is no internal storage to keep them", total, maxInline)
	}
	slices.SortFunc(entries, func(a, b entry) int { return len(b.json) - len(a.json) })
	out := make(map[string]any, len(values))
	for k, v := range values {
		out[k] = v
	}
	for _, e := range entries {
		if total <= maxInline {
			break
		}
		uri, err := uriOf(e.key)
		if err != nil {
			return nil, err
		}
		if _, err := store.Put(ctx, uri, bytes.NewReader(e.json)); err != nil {
			return nil, fmt.Errorf("storing %s: %w", e.key, err)
		}
		out[e.key] = map[string]any{RefKey: uri}
		total -= len(e.json) - len(uri) - len(RefKey) - 8
	}
	return out, nil
}

// refOf returns the URI of a reference made by Offload.
func refOf(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	uri, ok := m[RefKey].(string)
	return uri, ok
}

// IsRef reports whether v is a reference made by Offload.
func IsRef(v any) bool {
	_, ok := refOf(v)
	return ok
}

// Resolve returns v with every reference made by Offload, at any depth,
// replaced by the value it stands for, and whether there was any. Maps and
// lists holding a reference are copied; v is not changed, and is returned
// as is (no copy) without references. One walk of v.
func Resolve(ctx context.Context, store Storage, v any) (any, bool, error) {
	if uri, ok := refOf(v); ok {
		// A value kept whole (a job's outputs) may hold references of
		// its own (an output kept by the worker).
		loaded, err := load(ctx, store, uri)
		if err != nil {
			return nil, false, err
		}
		r, _, err := Resolve(ctx, store, loaded)
		return r, true, err
	}
	switch x := v.(type) {
	case map[string]any:
		var out map[string]any // a copy, made at the first reference
		for k, e := range x {
			r, changed, err := Resolve(ctx, store, e)
			if err != nil {
				return nil, false, err
			}
			if changed && out == nil {
				out = make(map[string]any, len(x))
				for k2, e2 := range x {
					out[k2] = e2
				}
			}
			if out != nil {
				out[k] = r
			}
		}
		if out != nil {
			return out, true, nil
		}
	case []any:
		var out []any
		for i, e := range x {
			r, changed, err := Resolve(ctx, store, e)
			if err != nil {
				return nil, false, err
			}
			if changed && out == nil {
				out = append([]any(nil), x...)
			}
			if out != nil {
				out[i] = r
			}
		}
		if out != nil {
			return out, true, nil
		}
	}
	return v, false, nil
}

// ResolveMap is Resolve for a map of values.
func ResolveMap(ctx context.Context, store Storage, m map[string]any) (map[string]any, bool, error) {
	v, changed, err := Resolve(ctx, store, m)
	if err != nil || !changed {
		return m, false, err
	}
	return v.(map[string]any), true, nil
}

func load(ctx context.Context, store Storage, uri string) (any, error) {
	if store == nil {
		return nil, fmt.Errorf("value kept at %s: there is no internal storage to read it from", uri)
	}
	r, err := store.Get(ctx, uri, Whole)
	if err != nil {
		return nil, fmt.Errorf("value kept at %s: %w", uri, err)
	}
	defer func() { _ = r.Close() }()
	b, err := io.ReadAll(io.LimitReader(r, MaxResolveBytes+1))
	if err != nil {
		return nil, fmt.Errorf("value kept at %s: %w", uri, err)
	}
	if len(b) > MaxResolveBytes {
		return nil, fmt.Errorf("value kept at %s is larger than %d MiB", uri, MaxResolveBytes>>20)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("value kept at %s: %w", uri, err)
	}
	return out, nil
}

// Expire deletes the objects last written before cutoff and returns how
// many. It lists the whole storage: run it rarely (hourly).
func Expire(ctx context.Context, store Storage, cutoff time.Time) (int, error) {
	infos, err := store.List(ctx, Root)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, i := range infos {
		if !i.Updated.Before(cutoff) {
			continue
		}
		if err := store.Delete(ctx, i.URI); err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

// resolveTimeout bounds the reading of one value kept in storage by an
// expression.
const resolveTimeout = 30 * time.Second

// RefResolver returns a function for expr.WithResolver: it puts back the
// values of references made by Offload when an expression reads them.
func RefResolver(store Storage) func(ctx context.Context, m map[string]any) (any, bool, error) {
	return func(ctx context.Context, m map[string]any) (any, bool, error) {
		uri, ok := refOf(m)
		if !ok {
			return nil, false, nil
		}
		ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
		v, _, err := Resolve(ctx, store, map[string]any{RefKey: uri})
		return v, true, err
	}
}

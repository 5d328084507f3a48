package storage_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/storage/local"
)

func TestOffloadAndResolve(t *testing.T) {
	ctx := t.Context()
	store, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 10_000)
	values := map[string]any{
		"small": "s", "n": 3.0,
		"big":  big,
		"list": []any{big, map[string]any{"k": big}},
	}
	uriOf := func(key string) (string, error) {
		return storage.OutputValue("ns", "f", "e1", "t", "tr", 1, key)
	}

	// Under the limit, nothing moves.
	same, err := storage.Offload(ctx, store, values, 1<<20, uriOf)
	if err != nil || !reflect.DeepEqual(same, values) || storage.IsRef(same["big"]) || storage.IsRef(same["list"]) {
		t.Fatalf("Offload under the limit = %v, %v; want the values as they are", same, err)
	}

	// Over it, the largest entries go to storage until the rest fits.
	out, err := storage.Offload(ctx, store, values, 5_000, uriOf)
	if err != nil {
		t.Fatal(err)
	}
	if !storage.IsRef(out["list"]) || !storage.IsRef(out["big"]) || out["small"] != "s" || out["n"] != 3.0 {
		t.Fatalf("Offload: list ref %v, big ref %v, small %v, n %v; want list and big as references, the rest inline", storage.IsRef(out["list"]), storage.IsRef(out["big"]), out["small"], out["n"])
	}
	if values["big"] != big {
		t.Fatal("Offload changed its argument")
	}
	back, changed, err := storage.ResolveMap(ctx, store, map[string]any{"outputs": map[string]any{"t": out}})
	if err != nil || !changed {
		t.Fatalf("ResolveMap = changed %v, %v; want the references put back", changed, err)
	}
	// Without references, the very map comes back, not a copy.
	if plain, changed, err := storage.ResolveMap(ctx, store, values); err != nil || changed || reflect.ValueOf(plain).Pointer() != reflect.ValueOf(values).Pointer() {
		t.Errorf("ResolveMap without references = changed %v, %v, or a copy; want the map itself", changed, err)
	}
	if got := back["outputs"].(map[string]any)["t"]; !reflect.DeepEqual(got, values) {
		t.Error("Resolve did not give back the original values")
	}

	// Without storage, a value over the limit is an error, not a loss.
	if _, err := storage.Offload(ctx, nil, values, 12_000, uriOf); err == nil {
		t.Error("Offload without storage: no error")
	}
	// A reference to a missing file names it.
	ref := map[string]any{storage.RefKey: "kite:///ns/f/executions/e1/gone.json"}
	if _, _, err := storage.Resolve(ctx, store, ref); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "gone.json") {
		t.Errorf("Resolve of a missing value = %v; want ErrNotFound naming it", err)
	}
}

func TestExpire(t *testing.T) {
	ctx := t.Context()
	store, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"kite:///a/f/executions/1/x", "kite:///b/f/executions/2/y"} {
		if _, err := store.Put(ctx, u, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := storage.Expire(ctx, store, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("Expire of nothing old = %d, %v", n, err)
	}
	if n, err := storage.Expire(ctx, store, time.Now().Add(time.Minute)); err != nil || n != 2 {
		t.Fatalf("Expire of everything = %d, %v; want 2", n, err)
	}
	if left, err := store.List(ctx, storage.Root); err != nil || len(left) != 0 {
		t.Errorf("left after Expire: %v, %v", left, err)
	}
}

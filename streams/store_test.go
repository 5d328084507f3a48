package streams

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// storeFactory opens a store; reopen (nil if not persistent) opens the same
// store again after Close.
type storeFactory struct {
	name string
	open func(t testing.TB) (Store, func() Store)
}

func storeFactories() []storeFactory {
	return []storeFactory{
		{name: "memory", open: func(testing.TB) (Store, func() Store) { return NewMemoryStore(), nil }},
		{name: "bbolt", open: func(t testing.TB) (Store, func() Store) {
			path := filepath.Join(t.TempDir(), "state.db")
			open := func() Store {
				t.Helper()
				s, err := OpenBoltStore(path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			return open(), open
		}},
		{name: "bbolt-cache", open: func(t testing.TB) (Store, func() Store) {
			s, err := OpenBoltCache(filepath.Join(t.TempDir(), "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s, nil
		}},
	}
}

// An App restores a cache store from its changelog's start: what the file
// held before must be gone, or keys deleted meanwhile would come back.
func TestBoltCacheStartsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenBoltCache(path)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "a", "1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBoltCache(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if _, ok, err := s.Get([]byte("a")); err != nil || ok {
		t.Errorf("Get(a) after reopening = found %v, %v; want an empty store", ok, err)
	}
}

func mustPut(t testing.TB, s Store, kv ...string) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		if err := s.Put([]byte(kv[i]), []byte(kv[i+1])); err != nil {
			t.Fatalf("Put(%q): %v", kv[i], err)
		}
	}
}

func rangeAll(t testing.TB, s Store, prefix string) []string {
	t.Helper()
	var got []string
	if err := s.Range([]byte(prefix), func(k, v []byte) bool {
		got = append(got, string(k)+"="+string(v))
		return true
	}); err != nil {
		t.Fatalf("Range(%q): %v", prefix, err)
	}
	return got
}

func wantGet(t testing.TB, s Store, key, want string, wantOK bool) {
	t.Helper()
	v, ok, err := s.Get([]byte(key))
	if err != nil || ok != wantOK || string(v) != want {
		t.Errorf("Get(%q) = %q, %v, %v; want %q, %v, nil", key, v, ok, err, want, wantOK)
	}
}

// TestStoreAcceptance is the contract of Store, run against every implementation.
func TestStoreAcceptance(t *testing.T) {
	for _, f := range storeFactories() {
		t.Run(f.name, func(t *testing.T) {
			t.Run("get missing", func(t *testing.T) {
				s, _ := f.open(t)
				wantGet(t, s, "nope", "", false)
			})
			t.Run("overwrite and caller owns slices", func(t *testing.T) {
				s, _ := f.open(t)
				k, v := []byte("exec/1"), []byte("a")
				if err := s.Put(k, v); err != nil {
					t.Fatal(err)
				}
				v[0] = 'X' // Put copied
				wantGet(t, s, "exec/1", "a", true)
				mustPut(t, s, "exec/1", "b")
				wantGet(t, s, "exec/1", "b", true)
				got, _, _ := s.Get([]byte("exec/1"))
				got[0] = 'Y' // Get returned a copy
				wantGet(t, s, "exec/1", "b", true)
			})
			t.Run("empty value and empty key", func(t *testing.T) {
				s, _ := f.open(t)
				mustPut(t, s, "k", "")
				wantGet(t, s, "k", "", true)
				if err := s.Put(nil, []byte("v")); err == nil {
					t.Error("Put(empty key) succeeded")
				}
			})
			t.Run("delete", func(t *testing.T) {
				s, _ := f.open(t)
				mustPut(t, s, "a", "1", "b", "2")
				for _, k := range []string{"a", "a", "missing"} {
					if err := s.Delete([]byte(k)); err != nil {
						t.Fatalf("Delete(%q): %v", k, err)
					}
				}
				wantGet(t, s, "a", "", false)
				if got := rangeAll(t, s, ""); !slices.Equal(got, []string{"b=2"}) {
					t.Errorf("after delete: %q", got)
				}
			})
			t.Run("range sub-keys by prefix in order", func(t *testing.T) {
				s, _ := f.open(t)
				mustPut(t, s, "exec/2/task/b", "2b", "exec/1/task/b", "b", "exec/1", "root",
					"exec/1/task/a", "a", "exec/10/task/a", "10a", "exec/1/task/\xff", "ff")
				tests := []struct {
					prefix string
					want   []string
				}{
					{"exec/1/", []string{"exec/1/task/a=a", "exec/1/task/b=b", "exec/1/task/\xff=ff"}},
					{"exec/1", []string{"exec/1=root", "exec/1/task/a=a", "exec/1/task/b=b", "exec/1/task/\xff=ff", "exec/10/task/a=10a"}},
					{"exec/3", nil},
					{"", []string{"exec/1=root", "exec/1/task/a=a", "exec/1/task/b=b", "exec/1/task/\xff=ff", "exec/10/task/a=10a", "exec/2/task/b=2b"}},
				}
				for _, tt := range tests {
					if got := rangeAll(t, s, tt.prefix); !slices.Equal(got, tt.want) {
						t.Errorf("Range(%q) = %q, want %q", tt.prefix, got, tt.want)
					}
				}
				var n int
				if err := s.Range(nil, func(k, v []byte) bool { n++; return n < 2 }); err != nil || n != 2 {
					t.Errorf("Range stopping after 2: called %d times, err %v", n, err)
				}
			})
			t.Run("closed", func(t *testing.T) {
				s, _ := f.open(t)
				for range 2 {
					if err := s.Close(); err != nil {
						t.Fatalf("Close(): %v", err)
					}
				}
				if _, _, err := s.Get([]byte("k")); !errors.Is(err, ErrStoreClosed) {
					t.Errorf("Get after Close = %v, want ErrStoreClosed", err)
				}
				if err := s.Put([]byte("k"), nil); !errors.Is(err, ErrStoreClosed) {
					t.Errorf("Put after Close = %v, want ErrStoreClosed", err)
				}
			})
			t.Run("reopen", func(t *testing.T) {
				s, reopen := f.open(t)
				if reopen == nil {
					t.Skip("not persistent")
				}
				mustPut(t, s, "exec/1/a", "1", "exec/1/b", "2", "exec/2", "3")
				if err := s.Delete([]byte("exec/2")); err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = reopen()
				if got := rangeAll(t, s, ""); !slices.Equal(got, []string{"exec/1/a=1", "exec/1/b=2"}) {
					t.Errorf("after reopen: %q", got)
				}
			})
		})
	}
}

// BenchmarkStoreRange measures a Range over one execution's sub-keys (10 task
// runs) in a store holding the state of n executions, as the executor's
// load does on every cache miss.
func BenchmarkStoreRange(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		for name, open := range map[string]func(testing.TB) Store{
			"memory": func(testing.TB) Store { return NewMemoryStore() },
			"bolt": func(tb testing.TB) Store {
				s, err := OpenBoltStore(filepath.Join(tb.TempDir(), "state.db"))
				if err != nil {
					tb.Fatal(err)
				}
				return s
			},
		} {
			b.Run(fmt.Sprintf("%s/executions=%d", name, n), func(b *testing.B) {
				s := open(b)
				defer func() { _ = s.Close() }()
				for i := range n {
					id := fmt.Sprintf("x/%08d", i)
					_ = s.Put([]byte(id), []byte("header"))
					for r := range 10 {
						_ = s.Put(fmt.Appendf(nil, "%s/r/%02d", id, r), []byte("task run"))
					}
				}
				prefix := fmt.Appendf(nil, "x/%08d/r/", n/2)
				b.ResetTimer()
				for b.Loop() {
					got := 0
					_ = s.Range(prefix, func(_, _ []byte) bool { got++; return true })
					if got != 10 {
						b.Fatalf("%d task runs, want 10", got)
					}
				}
			})
		}
	}
}

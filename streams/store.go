package streams

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Store is the key-value state store of one partition of a processor.
//
// Contract, for every implementation:
//   - Get returns (value, true, nil) for a present key and (nil, false, nil)
//     for a missing one; the returned slice belongs to the caller.
//   - Put stores copies of key and value: the caller may reuse its slices.
//     Put on an existing key overwrites it. Keys must be non-empty.
//   - Delete of a missing key is not an error.
//   - Range calls fn for every key with the prefix (all keys for an empty
//     prefix) in ascending bytewise order, until fn returns false. k and v
//     are valid only during the call (copy them to keep them), and fn must
//     not call the store's methods.
//   - Methods are safe for concurrent use; Close is idempotent and every
//     other method returns ErrStoreClosed after it.
type Store interface {
	Get(key []byte) ([]byte, bool, error)
	Put(key, value []byte) error
	Delete(key []byte) error
	Range(prefix []byte, fn func(k, v []byte) bool) error
	Close() error
}

// ErrStoreClosed is returned by a Store's methods after Close.
var ErrStoreClosed = errors.New("state store closed")

var errEmptyKey = errors.New("state store: empty key")

var (
	_ Store = (*MemoryStore)(nil)
	_ Store = (*BoltStore)(nil)
)

// MemoryStore is a Store in memory, restored from the changelog on start.
// Keys are kept in order (a B-tree), so that a Range costs the log of the
// store's size plus the keys it visits: an executor's store holds every
// execution it ran, and each load ranges over one execution's task runs.
type MemoryStore struct {
	mu     sync.RWMutex
	t      *btree.BTreeG[memEntry]
	closed bool
}

type memEntry struct {
	k string
	v []byte
}

func memLess(a, b memEntry) bool { return a.k < b.k }

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{t: btree.NewG(32, memLess)}
}

func (s *MemoryStore) Get(key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false, ErrStoreClosed
	}
	e, ok := s.t.Get(memEntry{k: string(key)})
	if !ok {
		return nil, false, nil
	}
	return bytes.Clone(e.v), true, nil
}

func (s *MemoryStore) Put(key, value []byte) error {
	if len(key) == 0 {
		return errEmptyKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	v := make([]byte, len(value)) // non-nil even when empty, like bbolt
	copy(v, value)
	s.t.ReplaceOrInsert(memEntry{k: string(key), v: v})
	return nil
}

func (s *MemoryStore) Delete(key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	s.t.Delete(memEntry{k: string(key)})
	return nil
}

func (s *MemoryStore) Range(prefix []byte, fn func(k, v []byte) bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrStoreClosed
	}
	p := string(prefix)
	s.t.AscendGreaterOrEqual(memEntry{k: p}, func(e memEntry) bool {
		return strings.HasPrefix(e.k, p) && fn([]byte(e.k), e.v)
	})
	return nil
}

func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.t = nil
	return nil
}

var boltBucket = []byte("kv")

// BoltStore is a Store in a bbolt file, for state larger than memory. Each
// Put and Delete is its own bbolt transaction (fsynced unless opened with
// OpenBoltCache).
type BoltStore struct {
	db        *bolt.DB
	closeOnce sync.Once
	closeErr  error
}

// OpenBoltStore opens (creating if needed) the store in the file at path.
// It fails after a second if another process holds the file.
func OpenBoltStore(path string) (*BoltStore, error) {
	return openBolt(path, &bolt.Options{Timeout: time.Second})
}

// OpenBoltCache opens an empty store in the file at path for state that an
// App restores from its changelog: whatever the file held is dropped (the
// restore replays the changelog from its start, so old keys whose
// tombstones were compacted away would otherwise come back), and writes are
// not fsynced (the changelog, not the file, is what survives a crash; an
// fsync per key made the executor's store its bottleneck).
func OpenBoltCache(path string) (*BoltStore, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("clearing state store %s: %w", path, err)
	}
	return openBolt(path, &bolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true})
}

func openBolt(path string, opts *bolt.Options) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		return nil, fmt.Errorf("opening state store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening state store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

func boltErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrStoreClosed
	}
	return err
}

func (s *BoltStore) Get(key []byte) (v []byte, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(boltBucket).Get(key); b != nil {
			v, ok = bytes.Clone(b), true
		}
		return nil
	})
	return v, ok, boltErr(err)
}

func (s *BoltStore) Put(key, value []byte) error {
	if len(key) == 0 {
		return errEmptyKey
	}
	return boltErr(s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).Put(key, value)
	}))
}

func (s *BoltStore) Delete(key []byte) error {
	return boltErr(s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).Delete(key)
	}))
}

func (s *BoltStore) Range(prefix []byte, fn func(k, v []byte) bool) error {
	return boltErr(s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if !fn(k, v) {
				break
			}
		}
		return nil
	}))
}

func (s *BoltStore) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.db.Close() })
	return s.closeErr
}

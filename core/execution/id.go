package execution

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"time"
)

// crockford is Crockford's base32 alphabet: no I, L, O or U, so an id read
// aloud or typed by hand is not mistaken.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idTimeLen is the number of characters of the time prefix of an execution id.
const idTimeLen = 10

// NewExecutionID returns an execution id: the creation time in
// milliseconds (10 base32 characters, so ids sort by creation time, as
// ULIDs do) followed by 64 bits of entropy (13 characters). Knowing when an
// execution was created from its id lets a reader of the Kafka topics seek
// to it instead of scanning from the beginning.
func NewExecutionID(created time.Time, entropy uint64) string {
	var b strings.Builder
	b.Grow(idTimeLen + 13)
	ms := uint64(max(created.UnixMilli(), 0))
	for i := idTimeLen - 1; i >= 0; i-- {
		b.WriteByte(crockford[(ms>>(5*uint(i)))&31])
	}
	for i := 12; i >= 0; i-- {
		b.WriteByte(crockford[(entropy>>(5*uint(i)))&31])
	}
	return b.String()
}

// RandomExecutionID returns a new execution id created at t with random entropy.
func RandomExecutionID(t time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return NewExecutionID(t, binary.BigEndian.Uint64(b[:]))
}

// ExecutionIDTime returns the creation time an execution id made by
// NewExecutionID carries; ok is false for other ids.
func ExecutionIDTime(id string) (t time.Time, ok bool) {
	if len(id) != idTimeLen+13 {
		return time.Time{}, false
	}
	var ms uint64
	for i := range len(id) {
		d := strings.IndexByte(crockford, id[i])
		if d < 0 {
			return time.Time{}, false
		}
		if i < idTimeLen {
			ms = ms<<5 | uint64(d)
		}
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}

package execution

import (
	"testing"
	"time"
)

func TestExecutionIDCarriesItsTime(t *testing.T) {
	created := time.Date(2026, 11, 22, 4, 30, 0, 123e6, time.UTC)
	a := NewExecutionID(created, 1)
	b := NewExecutionID(created.Add(time.Millisecond), 0)
	if len(a) != 23 {
		t.Fatalf("id %q has %d characters, want 23", a, len(a))
	}
	if got, ok := ExecutionIDTime(a); !ok || !got.Equal(created) {
		t.Errorf("ExecutionIDTime(%q) = %v, %v; want %v", a, got, ok, created)
	}
	if a >= b {
		t.Errorf("ids do not sort by creation time: %q >= %q", a, b)
	}
	if r1, r2 := RandomExecutionID(created), RandomExecutionID(created); r1 == r2 {
		t.Error("two random ids of the same millisecond are equal")
	}
	for _, id := range []string{"", "5wQ2zX", "0123456789ABCDEFGHIJKLU"} {
		if _, ok := ExecutionIDTime(id); ok {
			t.Errorf("ExecutionIDTime(%q) is ok for an id NewExecutionID did not make", id)
		}
	}
}

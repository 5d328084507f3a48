package flow_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiteflow/kite/core/flow"
)

// FuzzParse feeds arbitrary bytes to the parser: it must never panic, and it
// returns either a flow or located diagnostics.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	p := newParser(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		fl, err := p.Parse("fuzz.yaml", src)
		if err == nil {
			if fl == nil {
				t.Fatal("nil flow without error")
			}
			return
		}
		var diags flow.Diagnostics
		if !errors.As(err, &diags) || len(diags) == 0 {
			t.Fatalf("error is not Diagnostics: %v", err)
		}
	})
}

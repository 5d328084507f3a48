package tasks

import (
	"bufio"
	"slices"
	"strings"
	"testing"
)

func TestGlobRegexp(t *testing.T) {
	tests := []struct {
		glob    string
		match   []string
		noMatch []string
		wantErr string
	}{
		{glob: "*.txt", match: []string{"a.txt", ".txt"}, noMatch: []string{"d/a.txt", "a.txt.bak"}},
		{glob: "**.csv", match: []string{"a.csv", "x/y/a.csv"}, noMatch: []string{"a.csvx"}},
		{glob: "**/*.json", match: []string{"d/a.json", "d/e/a.json"}, noMatch: []string{"a.json"}},
		{glob: "out/**", match: []string{"out/a", "out/b/c"}, noMatch: []string{"out", "other/a"}},
		{glob: "file?.log", match: []string{"file1.log"}, noMatch: []string{"file10.log", "file/.log"}},
		{glob: "[ab].txt", match: []string{"a.txt", "b.txt"}, noMatch: []string{"c.txt"}},
		{glob: "[!ab].txt", match: []string{"c.txt"}, noMatch: []string{"a.txt", "/.txt"}},
		{glob: "*.{csv,json}", match: []string{"a.csv", "b.json"}, noMatch: []string{"c.txt"}},
		{glob: `a\*b`, match: []string{"a*b"}, noMatch: []string{"axb"}},
		{glob: "a+b(c).txt", match: []string{"a+b(c).txt"}, noMatch: []string{"aab(c).txt"}},
		{glob: "[abc", wantErr: "unclosed ["},
		{glob: "{a,b", wantErr: "unclosed {"},
		{glob: "{a,{b}}", wantErr: "nested {"},
		{glob: `a\`, wantErr: `trailing \`},
		{glob: "[z-a].txt", wantErr: "translating"},
	}
	for _, tt := range tests {
		t.Run(tt.glob, func(t *testing.T) {
			re, err := globRegexp(tt.glob)
			wantErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			for _, p := range tt.match {
				if !re.MatchString(p) {
					t.Errorf("%q does not match %q", tt.glob, p)
				}
			}
			for _, p := range tt.noMatch {
				if re.MatchString(p) {
					t.Errorf("%q matches %q", tt.glob, p)
				}
			}
		})
	}
}

func TestScanLogLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want []string
	}{
		{"lines", "a\nbb\r\n\nc", 10, []string{"a", "bb", "", "c"}},
		{"long line cut", "abcdefgh\nij", 3, []string{"abc", "def", "gh", "ij"}},
		{"exact size", "abc\n", 3, []string{"abc"}},
		// é is two bytes: never cut in the middle of a rune.
		{"rune kept whole", "aé\n", 2, []string{"a", "é"}},
		{"runes", "éééé", 5, []string{"éé", "éé"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := bufio.NewScanner(strings.NewReader(tt.in))
			sc.Buffer(make([]byte, 0, tt.max+1), tt.max+1)
			sc.Split(scanLogLines(tt.max))
			var got []string
			for sc.Scan() {
				got = append(got, sc.Text())
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("lines = %q, want %q", got, tt.want)
			}
		})
	}
}

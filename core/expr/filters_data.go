package expr

import (
	"context"
	"crypto/md5"  //nolint:gosec // md5 is a checksum filter, not security
	"crypto/sha1" //nolint:gosec // sha1 is a checksum filter, not security
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net/url"
	"sync"
	"time"

	"github.com/itchyny/gojq"
)

// Data filters: JSON, jq, encodings and hashes.
func dataFilters() map[string]*filterEntry {
	return map[string]*filterEntry{
		"json":         {fn: toJSONFilter},
		"toJson":       {fn: toJSONFilter},
		"jsonEncode":   {fn: toJSONFilter},
		"fromJson":     {fn: fromJSONFilter},
		"jsonDecode":   {fn: fromJSONFilter},
		"jq":           {fn: jqFilter, params: []string{"expression"}},
		"base64encode": {fn: stringFilter(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) })},
		"base64decode": {fn: base64DecodeFilter},
		"urlencode":    {fn: stringFilter(url.QueryEscape)},
		"urldecode":    {fn: urlDecodeFilter},
		"md5":          {fn: hashFilter(md5.New)},
		"sha1":         {fn: hashFilter(sha1.New)},
		"sha256":       {fn: hashFilter(sha256.New)},
		"sha512":       {fn: hashFilter(sha512.New)},
	}
}

func toJSONFilter(ctx context.Context, in any, _ []any) (any, error) {
	return marshalJSON(in, limitsFrom(ctx).MaxOutput)
}

func fromJSONFilter(_ context.Context, in any, _ []any) (any, error) {
	return parseJSONValue(in)
}

// parseJSONValue parses a JSON string; null stays null.
func parseJSONValue(in any) (any, error) {
	switch x := in.(type) {
	case nil:
		return nil, nil
	case string:
		return fromJSON(x)
	case []byte:
		return fromJSON(string(x))
	}
	return nil, fmt.Errorf("JSON parsing needs a string, got %s", typeName(in))
}

func base64DecodeFilter(_ context.Context, in any, _ []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(Stringify(in))
	if err != nil {
		return nil, fmt.Errorf("decoding base64: %w", err)
	}
	return string(b), nil
}

func urlDecodeFilter(_ context.Context, in any, _ []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	s, err := url.QueryUnescape(Stringify(in))
	if err != nil {
		return nil, fmt.Errorf("decoding URL: %w", err)
	}
	return s, nil
}

func hashFilter(newHash func() hash.Hash) Filter {
	return func(_ context.Context, in any, _ []any) (any, error) {
		if in == nil {
			return nil, nil
		}
		h := newHash()
		h.Write([]byte(Stringify(in)))
		return hex.EncodeToString(h.Sum(nil)), nil
	}
}

// jqCache keeps compiled jq programs; expressions are few and repeated.
var jqCache = struct {
	sync.Mutex
	m map[string]*gojq.Code
}{m: map[string]*gojq.Code{}}

const maxJQCache = 512

func compileJQ(src string) (*gojq.Code, error) {
	jqCache.Lock()
	code, ok := jqCache.m[src]
	jqCache.Unlock()
	if ok {
		return code, nil
	}
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parsing jq expression %q: %w", src, err)
	}
	code, err = gojq.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("compiling jq expression %q: %w", src, err)
	}
	jqCache.Lock()
	if len(jqCache.m) >= maxJQCache {
		clear(jqCache.m)
	}
	jqCache.m[src] = code
	jqCache.Unlock()
	return code, nil
}

// jqFilter runs a jq program on the input (a JSON string or a value) and
// returns the list of its results, as Kestra's jq filter does: use "| first"
// for a single result.
func jqFilter(ctx context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	src, err := strArg(args, 0, "expression", "")
	if err != nil {
		return nil, err
	}
	if src == "" {
		return nil, errors.New("argument expression is required")
	}
	code, err := compileJQ(src)
	if err != nil {
		return nil, err
	}
	input := in
	if s, ok := in.(string); ok {
		if input, err = fromJSON(s); err != nil {
			return nil, fmt.Errorf("jq input: %w", err)
		}
	}
	input, err = toJQ(input, 0)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lim := limitsFrom(ctx)
	out := []any{}
	items := 0
	iter := code.RunWithContext(ctx, input)
	for {
		v, ok := iter.Next()
		if !ok {
			break
		}
		if err, ok := v.(error); ok {
			var halt *gojq.HaltError
			if errors.As(err, &halt) && halt.Value() == nil {
				break
			}
			return nil, fmt.Errorf("running jq expression %q: %w", src, err)
		}
		c, err := fromJQ(v, &items, lim.MaxItems)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// toJQ converts a value to the types gojq accepts: nil, bool, int, float64,
// *big.Int, string, []any and map[string]any.
func toJQ(v any, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("jq input nested deeper than %d levels", maxJSONDepth)
	}
	switch x := v.(type) {
	case nil, bool, string, float64, int:
		return v, nil
	case time.Time:
		return formatISO(x), nil
	}
	if i, ok := toInt(v); ok {
		return int(i), nil
	}
	if _, f, _, ok := toNumber(v); ok {
		return f, nil
	}
	if l, ok := asList(v); ok {
		out := make([]any, len(l))
		for i, item := range l {
			c, err := toJQ(item, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	if m, ok := asMap(v); ok {
		out := make(map[string]any, len(m))
		for k, item := range m {
			c, err := toJQ(item, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	}
	return Stringify(v), nil
}

// fromJQ converts gojq results back, integers to int64, counting the items
// it creates: jq values may share items, and expanding them is bounded.
func fromJQ(v any, n *int, limit int) (any, error) {
	if *n++; *n > limit {
		return nil, fmt.Errorf("%w: jq result of more than %d items", ErrLimit, limit)
	}
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), nil
		}
		f, _ := new(big.Float).SetInt(x).Float64()
		return f, nil
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			c, err := fromJQ(item, n, limit)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			c, err := fromJQ(item, n, limit)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	}
	return v, nil
}

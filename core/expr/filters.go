package expr

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// builtinFilters lists the built-in filters: one entry each, with the names
// of their arguments for named-argument calls. More are in filters_data.go
// and filters_date.go.
func builtinFilters() map[string]*filterEntry {
	return map[string]*filterEntry{
		"upper":               {fn: stringFilter(strings.ToUpper)},
		"lower":               {fn: stringFilter(strings.ToLower)},
		"capitalize":          {fn: stringFilter(capitalize)},
		"title":               {fn: stringFilter(title)},
		"trim":                {fn: stringFilter(strings.TrimSpace)},
		"slugify":             {fn: stringFilter(slugify)},
		"string":              {fn: func(_ context.Context, in any, _ []any) (any, error) { return Stringify(in), nil }},
		"abbreviate":          {fn: abbreviateFilter, params: []string{"length"}},
		"replace":             {fn: replaceFilter, params: []string{"replace_pairs", "regexp"}},
		"split":               {fn: splitFilter, params: []string{"delimiter", "limit"}},
		"startsWith":          {fn: affixFilter(strings.HasPrefix), params: []string{"prefix"}},
		"endsWith":            {fn: affixFilter(strings.HasSuffix), params: []string{"suffix"}},
		"substringBefore":     {fn: substringFilter(false, false), params: []string{"separator"}},
		"substringBeforeLast": {fn: substringFilter(false, true), params: []string{"separator"}},
		"substringAfter":      {fn: substringFilter(true, false), params: []string{"separator"}},
		"substringAfterLast":  {fn: substringFilter(true, true), params: []string{"separator"}},
		"escapeChar":          {fn: escapeCharFilter, params: []string{"type"}},
		"indent":              {fn: indentFilter(false), params: []string{"amount", "prefix"}},
		"nindent":             {fn: indentFilter(true), params: []string{"amount", "prefix"}},
		"default":             {fn: defaultFilter, params: []string{"default"}, lenient: true},
		"length":              {fn: lengthFilter},
		"join":                {fn: joinFilter, params: []string{"separator"}},
		"first":               {fn: firstLastFilter(true)},
		"last":                {fn: firstLastFilter(false)},
		"keys":                {fn: keysFilter},
		"values":              {fn: valuesFilter},
		"sort":                {fn: sortFilter(false)},
		"rsort":               {fn: sortFilter(true)},
		"reverse":             {fn: reverseFilter},
		"slice":               {fn: sliceFilter, params: []string{"fromIndex", "toIndex"}},
		"merge":               {fn: mergeFilter, params: []string{"items"}},
		"distinct":            {fn: distinctFilter},
		"chunk":               {fn: chunkFilter, params: []string{"size"}},
		"flatten":             {fn: flattenFilter},
		"abs":                 {fn: absFilter},
		"number":              {fn: numberFilter, params: []string{"type"}},
	}
}

// stringFilter lifts a string function to a filter; null stays null and
// other values are converted to their text first.
func stringFilter(f func(string) string) Filter {
	return func(_ context.Context, in any, _ []any) (any, error) {
		if in == nil {
			return nil, nil
		}
		return f(Stringify(in)), nil
	}
}

func capitalize(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 {
		return s
	}
	return string(unicode.ToTitle(r)) + s[size:]
}

func title(s string) string {
	var b strings.Builder
	next := true
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			next = true
		case next:
			r = unicode.ToTitle(r)
			next = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// accents maps accented Latin letters to their base letter, for slugify.
var accents = func() map[rune]rune {
	groups := map[rune]string{
		'a': "àáâãäåāăą", 'c': "çćĉċč", 'd': "ďđ", 'e': "èéêëēĕėęě", 'g': "ĝğġģ", 'h': "ĥħ",
		'i': "ìíîïĩīĭįı", 'j': "ĵ", 'k': "ķ", 'l': "ĺļľŀł", 'n': "ñńņňŉ", 'o': "òóôõöøōŏő",
		'r': "ŕŗř", 's': "śŝşšș", 't': "ţťŧț", 'u': "ùúûüũūŭůűų", 'w': "ŵ", 'y': "ýÿŷ", 'z': "źżž",
	}
	m := map[rune]rune{}
	for base, list := range groups {
		for _, r := range list {
			m[r] = base
			m[unicode.ToUpper(r)] = base
		}
	}
	return m
}()

// slugify lowercases s, strips accents, turns whitespace into "-" and drops
// everything but letters, digits, "_" and "-", as Kestra's slugify does.
func slugify(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(s) {
		if base, ok := accents[r]; ok {
			r = base
		}
		switch {
		case unicode.IsSpace(r) || r == '-':
			space = true
			continue
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_'):
		case r == 'ß':
			r = 's'
		default:
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte('-')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

func abbreviateFilter(_ context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	n, err := intArgAt(args, 0, "length", -1)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, errors.New("argument length is required and must be positive")
	}
	runes := []rune(Stringify(in))
	if int64(len(runes)) <= n {
		return string(runes), nil
	}
	if n <= 3 {
		return "..."[:n], nil
	}
	return string(runes[:n-3]) + "...", nil
}

// replaceFilter is Kestra's replace({'from': 'to'}, regexp=false) and the
// two-string form replace('from', 'to').
func replaceFilter(ctx context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	s := Stringify(in)
	first, err := requireArg(args, 0, "replace_pairs")
	if err != nil {
		return nil, err
	}
	if from, ok := first.(string); ok {
		to, err := strArg(args, 1, "replacement", "")
		if err != nil {
			return nil, err
		}
		return limitedReplace(ctx, s, from, to)
	}
	pairs, ok := asMap(first)
	if !ok {
		return nil, fmt.Errorf("argument replace_pairs must be a map or a string, got %s", typeName(first))
	}
	useRegexp := Truthy(arg(args, 1))
	for _, from := range sortedKeys(pairs) {
		to := Stringify(pairs[from])
		if useRegexp {
			re, err := regexp.Compile(from)
			if err != nil {
				return nil, fmt.Errorf("invalid regular expression %q: %w", from, err)
			}
			s = re.ReplaceAllString(s, to)
		} else if s, err = limitedReplace(ctx, s, from, to); err != nil {
			return nil, err
		}
		if len(s) > limitsFrom(ctx).MaxOutput {
			return nil, fmt.Errorf("%w: string longer than %d bytes", ErrLimit, limitsFrom(ctx).MaxOutput)
		}
	}
	return s, nil
}

func limitedReplace(ctx context.Context, s, from, to string) (string, error) {
	n := strings.Count(s, from)
	if len(to) > len(from) && len(s)+n*(len(to)-len(from)) > limitsFrom(ctx).MaxOutput {
		return "", fmt.Errorf("%w: string longer than %d bytes", ErrLimit, limitsFrom(ctx).MaxOutput)
	}
	return strings.ReplaceAll(s, from, to), nil
}

// splitFilter splits on a literal delimiter; without a positive limit,
// trailing empty strings are dropped, as Java's String.split does.
func splitFilter(_ context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	sep, err := strArg(args, 0, "delimiter", "")
	if err != nil {
		return nil, err
	}
	if v := arg(args, 0); v == nil {
		return nil, errors.New("argument delimiter is required")
	}
	limit, err := intArgAt(args, 1, "limit", 0)
	if err != nil {
		return nil, err
	}
	s := Stringify(in)
	var parts []string
	if limit > 0 {
		parts = strings.SplitN(s, sep, int(min(limit, math.MaxInt32)))
	} else {
		parts = strings.Split(s, sep)
		for len(parts) > 1 && parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

func affixFilter(f func(s, affix string) bool) Filter {
	return func(_ context.Context, in any, args []any) (any, error) {
		if in == nil {
			return false, nil
		}
		a, err := requireArg(args, 0, "prefix or suffix")
		if err != nil {
			return nil, err
		}
		return f(Stringify(in), Stringify(a)), nil
	}
}

// substringFilter is Apache Commons' substringBefore/After(Last).
func substringFilter(after, last bool) Filter {
	return func(_ context.Context, in any, args []any) (any, error) {
		if in == nil {
			return nil, nil
		}
		s := Stringify(in)
		sep, err := strArg(args, 0, "separator", "")
		if err != nil {
			return nil, err
		}
		i := strings.Index(s, sep)
		if last {
			i = strings.LastIndex(s, sep)
		}
		switch {
		case sep == "" && after && last, sep == "" && !after && !last:
			return "", nil
		case sep == "":
			return s, nil
		case i < 0 && after:
			return "", nil
		case i < 0:
			return s, nil
		case after:
			return s[i+len(sep):], nil
		}
		return s[:i], nil
	}
}

// escapeCharFilter escapes quotes for embedding in 'single', "double" or
// shell single-quoted strings.
func escapeCharFilter(_ context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	kind, err := strArg(args, 0, "type", "")
	if err != nil {
		return nil, err
	}
	s := Stringify(in)
	switch kind {
	case "single":
		return strings.ReplaceAll(s, "'", `\'`), nil
	case "double":
		return strings.ReplaceAll(s, `"`, `\"`), nil
	case "shell":
		return strings.ReplaceAll(s, "'", `'\''`), nil
	}
	return nil, fmt.Errorf("argument type must be 'single', 'double' or 'shell', got %q", kind)
}

// indentFilter is Kestra's indent (every line but the first) and nindent (a
// newline first, then every line).
func indentFilter(newline bool) Filter {
	return func(ctx context.Context, in any, args []any) (any, error) {
		if in == nil {
			return nil, nil
		}
		s := Stringify(in)
		if s == "" {
			return s, nil
		}
		n, err := intArgAt(args, 0, "amount", -1)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, errors.New("argument amount is required and must be 0 or more")
		}
		prefix, err := strArg(args, 1, "prefix", " ")
		if err != nil {
			return nil, err
		}
		nl := "\n"
		switch {
		case strings.Contains(s, "\r\n"):
			nl = "\r\n"
		case !strings.Contains(s, "\n") && strings.Contains(s, "\r"):
			nl = "\r"
		}
		if newline {
			s = nl + s
		}
		lines := int64(strings.Count(s, nl))
		limit := int64(limitsFrom(ctx).MaxOutput)
		if n > limit || int64(len(prefix)) > limit || n*int64(len(prefix))*(lines+1) > limit {
			return nil, fmt.Errorf("%w: indented text too large", ErrLimit)
		}
		return strings.ReplaceAll(s, nl, nl+strings.Repeat(prefix, int(n))), nil
	}
}

// defaultFilter returns its argument when the input is undefined, null or
// empty (an empty or blank string, list or map), as Pebble's does.
func defaultFilter(_ context.Context, in any, args []any) (any, error) {
	if isEmpty(in) {
		return arg(args, 0), nil
	}
	return in, nil
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil, undefinedValue:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	}
	if l, ok := asList(v); ok {
		return len(l) == 0
	}
	if m, ok := asMap(v); ok {
		return len(m) == 0
	}
	return false
}

func absFilter(_ context.Context, in any, _ []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	i, f, isInt, ok := toNumber(in)
	if !ok {
		return nil, fmt.Errorf("abs needs a number, got %s", typeName(in))
	}
	if isInt {
		if i < 0 {
			return -i, nil
		}
		return i, nil
	}
	return math.Abs(f), nil
}

// numberFilter parses a string as a number: an integer when it is one,
// otherwise a float. type forces INT/LONG (integer) or FLOAT/DOUBLE.
func numberFilter(_ context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	if isNumber(in) {
		return normalize(in), nil
	}
	s, ok := in.(string)
	if !ok {
		return nil, fmt.Errorf("number needs a string, got %s", typeName(in))
	}
	s = strings.TrimSpace(s)
	kind, err := strArg(args, 0, "type", "")
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(kind) {
	case "INT", "LONG", "BIGINTEGER":
		n, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	case "FLOAT", "DOUBLE", "BIGDECIMAL":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	case "":
		if n, err := strconv.ParseInt(s, 0, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	}
	return nil, fmt.Errorf("argument type must be INT, LONG, FLOAT or DOUBLE, got %q", kind)
}

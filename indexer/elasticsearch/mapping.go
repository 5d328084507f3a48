package elasticsearch

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// docIDField holds every document's id (repository.Doc.ID): indexed with
// doc values, so that searches break ties by it, and left out of _source,
// so that hits are the documents as written. (Sorting on _id needs
// fielddata, which Elasticsearch 8 disables.)
const docIDField = "doc_id"

// dayLayout is the date suffix of daily indices, in UTC.
const dayLayout = "2006.01.02"

// templateVersion is stored in the index templates; raise it when the
// mappings change (New updates the templates and adds new fields to the
// existing indices in any case).
const templateVersion = 1

// templatePriority is above the built-in templates of Elasticsearch
// (logs-*-*, metrics-*-*: 100), so that no other pattern takes our indices.
const templatePriority = 200

// ignoreAbove keeps keyword values whose terms Lucene cannot index (over
// 32766 bytes; 4 bytes per character at most) in _source only, instead of
// rejecting the document.
const ignoreAbove = 8191

// metaName is the kind-like name of the index holding the generation.
const metaName = "meta"

// daily tells the kinds stored in one index per day.
func daily(k repository.Kind) bool { return k == repository.Logs || k == repository.Events }

// kindName is a kind in index names: task_runs is task-runs.
func kindName(k repository.Kind) string { return strings.ReplaceAll(string(k), "_", "-") }

// index is the index a single-index kind is stored in, or the base name of
// a daily kind's indices.
func (s *Store) index(k repository.Kind) string { return s.cfg.IndexPrefix + kindName(k) }

// searchIndex is what searches of a kind name: its index, or a pattern
// over a daily kind's indices.
func (s *Store) searchIndex(k repository.Kind) string {
	if daily(k) {
		return s.index(k) + "-*"
	}
	return s.index(k)
}

// dailyIndex is the index of a daily kind's documents of time t.
func (s *Store) dailyIndex(k repository.Kind, t time.Time) string {
	return s.index(k) + "-" + t.UTC().Format(dayLayout)
}

func (s *Store) metaIndex() string { return s.cfg.IndexPrefix + metaName }

// docTypes are the document structs, whose Go types tell integer from
// decimal numbers and which fields are stored only.
var docTypes = map[repository.Kind]reflect.Type{
	repository.Executions: reflect.TypeFor[repository.Execution](),
	repository.TaskRuns:   reflect.TypeFor[repository.TaskRun](),
	repository.Events:     reflect.TypeFor[repository.Event](),
	repository.Logs:       reflect.TypeFor[repository.Log](),
	repository.Flows:      reflect.TypeFor[repository.Flow](),
	repository.Triggers:   reflect.TypeFor[repository.Trigger](),
}

// jsonFields maps a struct's JSON field names to their Go types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	if t == nil {
		return out
	}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		out[name] = ft
	}
	return out
}

var keywordType = map[string]any{"type": "keyword", "ignore_above": ignoreAbove}

// mapping is a kind's explicit mapping: the schema's fields typed for
// search, label pairs, doc_id, and the struct's map fields (inputs,
// outputs, trigger, detail) as objects kept in _source but not indexed.
// Other fields are unmapped (dynamic: false): stored, not searchable.
func mapping(k repository.Kind) map[string]any {
	goFields := jsonFields(docTypes[k])
	props := map[string]any{docIDField: keywordType}
	for _, f := range repository.Schema(k).Fields {
		switch f.Type {
		case query.Keyword, query.Enum:
			props[f.Name] = keywordType
		case query.Text:
			props[f.Name] = map[string]any{"type": "text"}
		case query.Number:
			typ := "double"
			switch goFields[f.Name].Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				typ = "long"
			}
			props[f.Name] = map[string]any{"type": typ}
		case query.Date:
			props[f.Name] = map[string]any{"type": "date", "format": "strict_date_optional_time||epoch_millis"}
		case query.Duration:
			props[f.Name] = map[string]any{"type": "long"}
		case query.Bool:
			props[f.Name] = map[string]any{"type": "boolean"}
		case query.Labels:
			props[f.Name] = map[string]any{"properties": map[string]any{"key": keywordType, "value": keywordType}}
			props[query.LabelPairsField] = keywordType
		}
	}
	for name, t := range goFields {
		if _, ok := props[name]; !ok && t.Kind() == reflect.Map {
			props[name] = map[string]any{"type": "object", "enabled": false}
		}
	}
	return map[string]any{
		"dynamic":    false,
		"_source":    map[string]any{"excludes": []string{docIDField}},
		"properties": props,
	}
}

func metaMapping() map[string]any {
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"generation": keywordType,
			"created":    map[string]any{"type": "date"},
		},
	}
}

// template is the composable index template of a kind (or of the meta
// index, k == metaName).
func (s *Store) template(k repository.Kind) (name string, body map[string]any) {
	settings := map[string]any{
		"number_of_shards":   s.cfg.Shards,
		"number_of_replicas": s.cfg.Replicas,
	}
	var m map[string]any
	pattern := s.index(k)
	switch {
	case k == metaName:
		pattern = s.metaIndex()
		settings["number_of_shards"] = 1
		m = metaMapping()
	case daily(k):
		pattern = s.searchIndex(k)
		settings["codec"] = "best_compression" // written once, read rarely
		m = mapping(k)
	default:
		m = mapping(k)
	}
	return pattern, map[string]any{
		"index_patterns": []string{pattern},
		"priority":       templatePriority,
		"version":        templateVersion,
		"template":       map[string]any{"settings": map[string]any{"index": settings}, "mappings": m},
	}
}

// templateName is a template's name: its index pattern without the '*'.
func templateName(pattern string) string {
	return strings.TrimSuffix(strings.TrimSuffix(pattern, "*"), "-")
}

// setup creates or updates the index templates, creates the single
// indices, and adds new mapped fields to existing indices. Every step is
// idempotent and safe to race with another instance's.
func (s *Store) setup(ctx context.Context) error {
	kinds := append([]repository.Kind{metaName}, repository.Kinds...)
	for _, k := range kinds {
		pattern, body := s.template(k)
		name := templateName(pattern)
		status, resp, err := s.call(ctx, http.MethodPut, "/_index_template/"+name, nil, body)
		if err != nil {
			return fmt.Errorf("creating index template %s: %w", name, err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("creating index template %s: %w", name, apiError(status, resp))
		}
	}
	for _, k := range kinds {
		if k == metaName {
			if err := s.createIndex(ctx, s.metaIndex()); err != nil {
				return err
			}
			continue
		}
		if !daily(k) {
			if err := s.createIndex(ctx, s.index(k)); err != nil {
				return err
			}
		}
		// Indices created from an older template get the fields added
		// since; a changed field type is a conflict that needs a reindex.
		m := mapping(k)
		delete(m, "_source")
		q := url.Values{"allow_no_indices": {"true"}, "ignore_unavailable": {"true"}}
		status, resp, err := s.call(ctx, http.MethodPut, "/"+s.searchIndex(k)+"/_mapping", q, m)
		if err != nil {
			return fmt.Errorf("updating the mapping of %s: %w", s.searchIndex(k), err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("updating the mapping of %s (delete or reindex indices made by an incompatible Kite): %w",
				s.searchIndex(k), apiError(status, resp))
		}
	}
	return nil
}

// createIndex creates an index from its template unless it exists.
func (s *Store) createIndex(ctx context.Context, name string) error {
	status, resp, err := s.call(ctx, http.MethodPut, "/"+name, nil, map[string]any{})
	if err != nil {
		return fmt.Errorf("creating index %s: %w", name, err)
	}
	if status == http.StatusOK {
		return nil
	}
	if err := apiError(status, resp); errType(err) != "resource_already_exists_exception" {
		return fmt.Errorf("creating index %s: %w", name, err)
	}
	return nil
}

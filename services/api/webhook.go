package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// webhookType is the trigger type of webhooks (core/tasks/triggers.go).
const webhookType = "webhook"

// webhookResponse is the body of a webhook's answer.
type webhookResponse struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	FlowID    string `json:"flowId"`
	State     string `json:"state"`
}

// webhookError is the body of a webhook's error answer.
type webhookError struct {
	Error      string             `json:"error"`
	Violations []webhookViolation `json:"violations,omitempty"`
}

type webhookViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// webhook serves POST and GET /webhooks/{namespace}/{flow}/{key}: it creates
// an execution of the latest revision of the flow when it has an enabled
// webhook trigger with that key, with the request as the trigger's
// variables (body, headers, parameters), and answers the execution's id and
// state. An unknown flow or key, a disabled flow or trigger: 404.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	namespace, flowID, key := r.PathValue("namespace"), r.PathValue("flow"), r.PathValue("key")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.WebhookMaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSON(w, http.StatusRequestEntityTooLarge, webhookError{Error: fmt.Sprintf("the body exceeds %d bytes", tooLarge.Limit)})
			return
		}
		writeJSON(w, http.StatusBadRequest, webhookError{Error: "reading the body: " + err.Error()})
		return
	}

	notFound := webhookError{Error: fmt.Sprintf("no enabled webhook trigger of flow %s.%s has this key", namespace, flowID)}
	f, err := s.flows.Flow(namespace, flowID, 0)
	if err != nil {
		if errors.Is(err, flow.ErrNotFound) {
			writeJSON(w, http.StatusNotFound, notFound)
			return
		}
		s.writeStatus(w, s.status(ctx, err))
		return
	}
	trigger := s.webhookTrigger(ctx, f, key)
	if f.Disabled || trigger == nil {
		writeJSON(w, http.StatusNotFound, notFound)
		return
	}

	vars := map[string]any{
		"body":       webhookBody(r.Header.Get("Content-Type"), body),
		"headers":    valuesMap(r.Header, strings.ToLower),
		"parameters": valuesMap(r.URL.Query(), nil),
	}
	n := newExecution{flow: f}
	if n.trigger, err = codec.ToStruct(vars); err != nil {
		writeJSON(w, http.StatusBadRequest, webhookError{Error: "the request cannot be an execution's trigger variables: " + err.Error()})
		return
	}
	if n.inputs, n.labels, err = s.webhookInputs(ctx, f, trigger, vars); err != nil {
		writeJSON(w, http.StatusBadRequest, webhookError{Error: err.Error()})
		return
	}
	e, err := s.create(ctx, n)
	if err != nil {
		s.writeStatus(w, s.status(ctx, err))
		return
	}
	writeJSON(w, http.StatusOK, webhookResponse{ID: e.GetId(), Namespace: e.GetNamespace(), FlowID: e.GetFlowId(), State: string(codec.FromState(e.GetState()))})
}

// webhookTrigger returns the enabled webhook trigger of f whose key is key,
// or nil. A key that is an expression is rendered with the flow's variables.
func (s *Server) webhookTrigger(ctx context.Context, f *flow.Flow, key string) *flow.Trigger {
	for _, t := range f.Triggers {
		if t.Type != webhookType || t.Disabled {
			continue
		}
		want, _ := t.Props["key"].(string)
		if s.engine != nil && strings.Contains(want, "{{") {
			rendered, err := s.engine.Render(ctx, want, flowVars(f))
			if err != nil {
				s.logger.Warn("webhook key does not render", fNamespace(f.Namespace), fFlowID(f.ID), zap.String("trigger_id", t.ID), zap.Error(err))
				continue
			}
			want = rendered
		}
		if want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(key)) == 1 {
			return t
		}
	}
	return nil
}

// webhookInputs renders the trigger's inputs and labels with the request's
// variables ({{ trigger.body.x }}).
func (s *Server) webhookInputs(ctx context.Context, f *flow.Flow, t *flow.Trigger, trigger map[string]any) (*structpb.Struct, []*kitev1.Label, error) {
	vars := flowVars(f)
	vars["trigger"] = trigger
	var inputs *structpb.Struct
	if raw, ok := t.Props["inputs"].(map[string]any); ok {
		rendered := make(map[string]any, len(raw))
		for k, v := range raw {
			var err error
			if str, isStr := v.(string); isStr {
				rendered[k], err = s.engine.RenderValue(ctx, str, vars)
			} else {
				rendered[k], err = s.engine.RenderAll(ctx, v, vars)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("rendering input %s of trigger %s: %w", k, t.ID, err)
			}
		}
		var err error
		if inputs, err = codec.ToStruct(rendered); err != nil {
			return nil, nil, fmt.Errorf("inputs of trigger %s: %w", t.ID, err)
		}
	}
	var labels []*kitev1.Label
	if raw, ok := t.Props["labels"]; ok && raw != nil {
		rendered, err := s.engine.RenderAll(ctx, raw, vars)
		if err != nil {
			return nil, nil, fmt.Errorf("rendering the labels of trigger %s: %w", t.ID, err)
		}
		labels = triggerLabels(rendered)
	}
	return inputs, labels, nil
}

// triggerLabels reads a trigger's labels: a map, or a list of {key, value}.
func triggerLabels(v any) []*kitev1.Label {
	var out []*kitev1.Label
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			out = append(out, &kitev1.Label{Key: k, Value: fmt.Sprint(v[k])})
		}
	case []any:
		for _, item := range v {
			if m, ok := item.(map[string]any); ok {
				out = append(out, &kitev1.Label{Key: fmt.Sprint(m["key"]), Value: fmt.Sprint(m["value"])})
			}
		}
	}
	return out
}

func flowVars(f *flow.Flow) map[string]any {
	return map[string]any{"flow": map[string]any{"id": f.ID, "namespace": f.Namespace, "revision": f.Revision}}
}

// webhookBody is the request body as the trigger's body variable: decoded
// when it is JSON (the content type says so and it parses), else a string;
// nil when empty.
func webhookBody(contentType string, body []byte) any {
	if len(body) == 0 {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err == nil && !dec.More() {
			return v
		}
	}
	return string(body)
}

// valuesMap turns headers or query parameters into template values: each
// name to the list of its values.
func valuesMap(values map[string][]string, name func(string) string) map[string]any {
	out := make(map[string]any, len(values))
	for k, vs := range values {
		if name != nil {
			k = name(k)
		}
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		out[k] = list
	}
	return out
}

// writeStatus answers a gRPC status as HTTP.
func (s *Server) writeStatus(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	code := http.StatusInternalServerError
	switch st.Code() {
	case codes.InvalidArgument:
		code = http.StatusBadRequest
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.FailedPrecondition:
		code = http.StatusConflict
	case codes.Unavailable, codes.Canceled:
		code = http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		code = http.StatusGatewayTimeout
	}
	body := webhookError{Error: st.Message()}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				body.Violations = append(body.Violations, webhookViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kiteflow/kite/services/rpcstatus"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// Page sizes of List.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// TriggerService is the TriggerService of the public API. It reads the
// trigger states from the triggers topic, which it holds in memory, and
// writes Enable, Disable and Backfill as records of the trigger-commands
// topic, which the scheduler applies. Each request first reads the
// triggers topic up to its end, so it sees what the scheduler wrote before
// it; the trigger a command returns is the state the command leads to, which
// the scheduler records moments later. Register it with
// kitev1.RegisterTriggerServiceServer and keep Run running.
type TriggerService struct {
	kitev1.UnimplementedTriggerServiceServer
	cfg      Config
	log      *zap.Logger
	client   *kgo.Client
	view     *stateView
	commands string // the trigger-commands topic

	runOnce   sync.Once
	closeOnce sync.Once
}

var _ kitev1.TriggerServiceServer = (*TriggerService)(nil)

// NewTriggerService returns the TriggerService on the topics of kafka,
// which must exist (streams.EnsureTopics). cfg gives its clock; clientOpts
// are extra options of its Kafka client (e.g. streams.WithMetrics). Start
// it with Run.
func NewTriggerService(cfg Config, kafka streams.Config, logger *zap.Logger, clientOpts ...kgo.Opt) (*TriggerService, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("trigger_service")
	opts, err := kafka.ClientOpts(logger, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("trigger service: %w", err)
	}
	topic := kafka.Topic(streams.TopicTriggers)
	client, err := kgo.NewClient(append(opts,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (transaction markers) are read too, so that the
		// read position passes them: see stateView.sync.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("trigger service: creating kafka client: %w", err)
	}
	return &TriggerService{cfg: cfg, log: logger, client: client, view: newStateView(topic, client, logger),
		commands: kafka.Topic(streams.TopicTriggerCommands)}, nil
}

// Run reads the triggers topic until ctx ends; it returns nil then, or the
// error that stopped it. It closes the service when it returns.
func (s *TriggerService) Run(ctx context.Context) error {
	err := errors.New("trigger service: Run called twice")
	s.runOnce.Do(func() {
		defer s.Close()
		err = s.view.run(ctx)
	})
	return err
}

// Close closes the service's Kafka client. It is idempotent.
func (s *TriggerService) Close() { s.closeOnce.Do(s.client.Close) }

// List returns a page of the triggers under a namespace prefix. The page
// token is the key of the last trigger of the previous page.
func (s *TriggerService) List(ctx context.Context, req *kitev1.TriggerServiceListRequest) (*kitev1.TriggerServiceListResponse, error) {
	var vs []*errdetails.BadRequest_FieldViolation
	size := defaultPageSize
	switch n := req.GetPageSize(); {
	case n < 0:
		vs = append(vs, rpcstatus.Violation("page_size", fmt.Sprintf("must not be negative, got %d", n)))
	case n > 0:
		size = min(int(n), maxPageSize)
	}
	var after []string
	if tok := req.GetPageToken(); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if after = strings.Split(string(b), "/"); err != nil || len(after) != 3 {
			vs = append(vs, rpcstatus.Violation("page_token", "not a page token this server gave; pass next_page_token as it was returned"))
		}
	}
	if req.GetFlowId() != "" && req.GetNamespacePrefix() == "" {
		vs = append(vs, rpcstatus.Violation("namespace_prefix", "is required with flow_id: it is then the flow's namespace"))
	}
	if len(vs) > 0 {
		return nil, invalidRequest(vs)
	}
	if err := s.view.sync(ctx); err != nil {
		return nil, s.status(err)
	}
	all := s.view.list(req.GetNamespacePrefix(), req.GetFlowId())
	start := 0
	if after != nil {
		for start < len(all) && compareTrigger(all[start], after[0], after[1], after[2]) <= 0 {
			start++
		}
	}
	end := min(start+size, len(all))
	resp := &kitev1.TriggerServiceListResponse{}
	for _, st := range all[start:end] {
		resp.Triggers = append(resp.Triggers, apiTrigger(st))
	}
	if end < len(all) {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(stateKey(all[end-1])))
	}
	return resp, nil
}

// Enable enables a trigger disabled by Disable.
func (s *TriggerService) Enable(ctx context.Context, req *kitev1.TriggerServiceEnableRequest) (*kitev1.TriggerServiceEnableResponse, error) {
	st, err := s.command(ctx, req.GetNamespace(), req.GetFlowId(), req.GetTriggerId(),
		&eventv1.TriggerCommand{Kind: &eventv1.TriggerCommand_Enable{Enable: &eventv1.EnableTriggerCommand{}}})
	if err != nil {
		return nil, s.status(err)
	}
	if st.GetDisabled() { // the scheduler resumes it from now
		st.Disabled, st.NextTime = false, nil
		if sch, err := parseSchedule(st.GetSchedule()); err == nil && enabled(st) {
			st.NextTime = ts(sch.next(s.cfg.now()))
		}
	}
	return &kitev1.TriggerServiceEnableResponse{Trigger: apiTrigger(st)}, nil
}

// Disable disables a trigger until Enable.
func (s *TriggerService) Disable(ctx context.Context, req *kitev1.TriggerServiceDisableRequest) (*kitev1.TriggerServiceDisableResponse, error) {
	st, err := s.command(ctx, req.GetNamespace(), req.GetFlowId(), req.GetTriggerId(),
		&eventv1.TriggerCommand{Kind: &eventv1.TriggerCommand_Disable{Disable: &eventv1.DisableTriggerCommand{}}})
	if err != nil {
		return nil, s.status(err)
	}
	st.Disabled, st.NextTime = true, nil
	return &kitev1.TriggerServiceDisableResponse{Trigger: apiTrigger(st)}, nil
}

// Backfill starts a backfill of a Schedule trigger.
func (s *TriggerService) Backfill(ctx context.Context, req *kitev1.TriggerServiceBackfillRequest) (*kitev1.TriggerServiceBackfillResponse, error) {
	now := s.cfg.now()
	var vs []*errdetails.BadRequest_FieldViolation
	if req.GetStart() == nil {
		vs = append(vs, rpcstatus.Violation("start", "is required: the first tick to backfill"))
	} else if err := req.GetStart().CheckValid(); err != nil {
		vs = append(vs, rpcstatus.Violation("start", err.Error()))
	}
	end := now
	if req.GetEnd() != nil {
		if err := req.GetEnd().CheckValid(); err != nil {
			vs = append(vs, rpcstatus.Violation("end", err.Error()))
		}
		end = req.GetEnd().AsTime()
	}
	start := req.GetStart().AsTime()
	switch {
	case len(vs) > 0:
	case !end.After(start):
		vs = append(vs, rpcstatus.Violation("end", fmt.Sprintf("%s is not after start %s", end.Format(time.RFC3339), start.Format(time.RFC3339))))
	case end.After(now):
		vs = append(vs, rpcstatus.Violation("end", fmt.Sprintf("%s is in the future: the schedule itself creates the executions of the ticks to come; leave end unset for now", end.Format(time.RFC3339))))
	}
	if len(vs) > 0 {
		return nil, invalidRequest(vs)
	}
	cmd := &eventv1.BackfillTriggerCommand{Start: ts(start), End: ts(end), Inputs: req.GetInputs(), Labels: req.GetLabels()}
	var first time.Time
	check := func(st *eventv1.TriggerState) error {
		if st.GetSchedule() == nil {
			return fmt.Errorf("%w: trigger %s is of type %s; only a Schedule trigger can be backfilled", ErrInvalid, st.GetTriggerId(), st.GetTypeName())
		}
		if bf := st.GetBackfill(); bf != nil {
			return fmt.Errorf("%w: from %s to %s, at %s; wait for it to end", ErrBackfillRunning,
				bf.GetStart().AsTime().Format(time.RFC3339), bf.GetEnd().AsTime().Format(time.RFC3339), bf.GetCurrent().AsTime().Format(time.RFC3339))
		}
		sch, err := parseSchedule(st.GetSchedule())
		if err != nil {
			return fmt.Errorf("trigger %s: %w", st.GetTriggerId(), err)
		}
		if first = sch.atOrAfter(start); first.IsZero() || !first.Before(end) {
			return fmt.Errorf("%w: cron %q has no tick from %s to %s", ErrInvalid, st.GetSchedule().GetCron(),
				start.Format(time.RFC3339), end.Format(time.RFC3339))
		}
		return nil
	}
	st, err := s.command(ctx, req.GetNamespace(), req.GetFlowId(), req.GetTriggerId(),
		&eventv1.TriggerCommand{Kind: &eventv1.TriggerCommand_Backfill{Backfill: cmd}}, check)
	if err != nil {
		return nil, s.status(err)
	}
	st.Backfill = &eventv1.BackfillState{Start: cmd.GetStart(), End: cmd.GetEnd(), Current: ts(first)}
	return &kitev1.TriggerServiceBackfillResponse{Trigger: apiTrigger(st)}, nil
}

// command writes a command for an existing trigger, once checks pass, and
// returns the trigger's state as read before.
func (s *TriggerService) command(ctx context.Context, namespace, flowID, triggerID string, c *eventv1.TriggerCommand,
	checks ...func(*eventv1.TriggerState) error) (*eventv1.TriggerState, error) {
	vs := append(append(rpcstatus.Required("namespace", namespace), rpcstatus.Required("flow_id", flowID)...), rpcstatus.Required("trigger_id", triggerID)...)
	if len(vs) > 0 {
		return nil, &badRequestError{vs}
	}
	if err := s.view.sync(ctx); err != nil {
		return nil, err
	}
	st, err := s.view.get(namespace, flowID, triggerID)
	if err != nil {
		return nil, err
	}
	for _, check := range checks {
		if err := check(st); err != nil {
			return nil, err
		}
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	c.Namespace, c.FlowId, c.TriggerId = namespace, flowID, triggerID
	c.CommandId, c.Time = hex.EncodeToString(id[:]), ts(s.cfg.now())
	value, err := proto.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding trigger command: %w", err)
	}
	rec := &kgo.Record{Topic: s.commands, Key: []byte(streams.FlowKey(namespace, flowID)), Value: value}
	if err := s.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("writing trigger command: %w", ctx.Err())
		}
		return nil, fmt.Errorf("%w: writing trigger command to topic %s: %w", ErrUnavailable, s.commands, err)
	}
	s.log.Info("trigger command written", zap.String("namespace", namespace), zap.String("flow_id", flowID),
		zap.String("trigger_id", triggerID), zap.String("command_id", c.GetCommandId()))
	return st, nil
}

// apiTrigger is the API's view of a trigger state.
func apiTrigger(st *eventv1.TriggerState) *kitev1.Trigger {
	t := &kitev1.Trigger{
		Namespace: st.GetNamespace(),
		FlowId:    st.GetFlowId(),
		TriggerId: st.GetTriggerId(),
		Type:      st.GetTypeName(),
		Disabled:  !enabled(st),
		NextTime:  st.GetNextTime(),
		LastTime:  st.GetLastTime(),
	}
	if t.Type == "" {
		t.Type = st.GetType()
	}
	if bf := st.GetBackfill(); bf != nil {
		t.Backfill = &kitev1.Backfill{Start: bf.GetStart(), End: bf.GetEnd(), Current: bf.GetCurrent()}
	}
	return t
}

// status translates an error to a gRPC status.
func (s *TriggerService) status(err error) error {
	var br *badRequestError
	switch {
	case errors.As(err, &br):
		return invalidRequest(br.violations)
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrBackfillRunning):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, ErrUnavailable):
		s.log.Warn("triggers unavailable", zap.Error(err))
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	s.log.Error("trigger service", zap.Error(err))
	return status.Error(codes.Internal, err.Error())
}

// invalidRequest is INVALID_ARGUMENT listing the violations.
func invalidRequest(vs []*errdetails.BadRequest_FieldViolation) error {
	return rpcstatus.BadRequest((&badRequestError{vs}).Error(), vs...)
}

// badRequestError carries the field violations of a request.
type badRequestError struct {
	violations []*errdetails.BadRequest_FieldViolation
}

func (e *badRequestError) Error() string {
	parts := make([]string, len(e.violations))
	for i, v := range e.violations {
		parts[i] = v.GetField() + ": " + v.GetDescription()
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

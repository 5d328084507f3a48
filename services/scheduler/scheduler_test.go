package scheduler

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kiteflow/kite/proto/codec"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

const ns = "company.team"

// flowSource is a flow with one Schedule trigger "tick" on cron, and a
// webhook trigger "hook".
func flowSource(id, cron, extra string) string {
	return fmt.Sprintf(`id: %s
namespace: company.team
labels:
  team: data
inputs:
  - id: day
    type: STRING
    defaults: none
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.day }}"
triggers:
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: %q
    inputs:
      day: "{{ trigger.date }}"
    labels:
      origin: schedule%s
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: secret
`, id, cron, extra)
}

func newFlow(id string, revision int32, source string) *kitev1.Flow {
	return &kitev1.Flow{Namespace: ns, Id: id, Revision: revision, Source: source}
}

// TestScheduleFiresOncePerTick: a per-second schedule creates one execution
// per tick, with the trigger's variables, inputs and labels.
func TestScheduleFiresOncePerTick(t *testing.T) {
	eachBroker(t, func(t *testing.T, kafka newKafka) {
		h := newHarness(t, kafka(t))
		h.start("a")
		source := flowSource("every-second", "*/1 * * * * *", "")
		h.applyFlow(newFlow("every-second", 1, source))
		h.waitNext(ns, "every-second", "tick", sec(1))

		h.advance("every-second", 5)
		cmds := h.commands()
		checkOnce(t, cmds, "every-second", secs(1, 5), nil)

		// The commands of one flow are spread over the partitions of the
		// commands topic (keyed by execution id): find tick 5's.
		i := slices.IndexFunc(cmds, func(c *eventv1.Command) bool {
			return c.GetCreate().GetTrigger().GetFields()["date"].GetStringValue() == "2030-01-01T00:00:05Z"
		})
		if i < 0 {
			t.Fatal("no command of tick 5")
		}
		c := cmds[i]
		cr := c.GetCreate()
		if cr.GetNamespace() != ns || cr.GetRevision() != 1 || cr.GetFlowSource() != source {
			t.Errorf("create command of %s/%s revision %d", cr.GetNamespace(), cr.GetFlowId(), cr.GetRevision())
		}
		wantVars := map[string]any{"date": "2030-01-01T00:00:05Z", "next": "2030-01-01T00:00:06Z", "previous": "2030-01-01T00:00:04Z"}
		if got := codec.FromStruct(cr.GetTrigger()); fmt.Sprint(got) != fmt.Sprint(wantVars) {
			t.Errorf("trigger variables %v, want %v", got, wantVars)
		}
		if got := codec.FromStruct(cr.GetInputs()); fmt.Sprint(got) != "map[day:2030-01-01T00:00:05Z]" {
			t.Errorf("inputs %v, want the rendered trigger.date", got)
		}
		if got := codec.FromLabels(cr.GetLabels()); fmt.Sprint(got) != "[{team data} {origin schedule}]" {
			t.Errorf("labels %v, want the flow's then the trigger's", got)
		}
		if id := c.GetExecutionId(); id != executionID("company.team/every-second/tick", sec(5), "") {
			t.Errorf("execution id %s is not derived from the trigger and the tick", id)
		}

		// List reads the triggers topic, which may lag the commands by a
		// moment: wait for the state of tick 5.
		tr := h.waitTrigger(ns, "every-second", "tick", "the state after tick 5", func(t *kitev1.Trigger) bool {
			return t != nil && t.GetLastTime().AsTime().Equal(h.clock.Now())
		})
		if !tr.GetNextTime().AsTime().Equal(sec(6)) || tr.GetType() != "io.kestra.plugin.core.trigger.Schedule" || tr.GetDisabled() {
			t.Errorf("trigger state %v", tr)
		}
	})
}

// TestExactlyOnceAcrossRestart: the ticks missed while the scheduler was
// down fire once when it is back, and none fires twice.
func TestExactlyOnceAcrossRestart(t *testing.T) {
	eachBroker(t, func(t *testing.T, kafka newKafka) {
		h := newHarness(t, kafka(t))
		stop := h.start("a")
		h.applyFlow(newFlow("restart", 1, flowSource("restart", "*/1 * * * * *", "")))
		h.waitNext(ns, "restart", "tick", sec(1))
		h.advance("restart", 3)
		stop()

		h.clock.Advance(5 * time.Second) // ticks 4 to 8 are missed
		h.start("a")
		h.waitCommands("the missed ticks", hasDate("restart", sec(8)))
		h.advance("restart", 2)
		checkOnce(t, h.commands(), "restart", secs(1, 10), nil)
	})
}

// TestRecoverMissedSchedules: after a downtime longer than MissedAfter,
// recoverMissedSchedules says which missed ticks fire, at most
// MaxMissedFires of them.
func TestRecoverMissedSchedules(t *testing.T) {
	eachBroker(t, func(t *testing.T, kafka newKafka) {
		h := newHarness(t, kafka(t), func(c *Config) {
			c.MissedAfter = 2 * time.Second
			c.MaxMissedFires = 4
		})
		stop := h.start("a")
		recoverMode := map[string]string{"all": "ALL", "last": "LAST", "none": "NONE", "late": "ALL"}
		for id, mode := range recoverMode {
			extra := "\n    recoverMissedSchedules: " + mode
			if id == "late" {
				extra += "\n    lateMaximumDelay: PT2.5S"
			}
			h.applyFlow(newFlow(id, 1, flowSource(id, "*/1 * * * * *", extra)))
			h.waitNext(ns, id, "tick", sec(1))
		}
		h.clock.Advance(time.Second)
		for id := range recoverMode {
			h.waitCommands("tick 1 of "+id, hasDate(id, sec(1)))
		}
		stop()

		h.clock.Advance(30 * time.Second) // now 00:00:31.5; ticks 2 to 31 missed
		h.start("a")
		for id := range recoverMode {
			h.waitNext(ns, id, "tick", sec(32))
		}
		cmds := h.commands()
		checkOnce(t, cmds, "all", append(secs(1, 1), secs(28, 31)...), nil) // the latest MaxMissedFires
		checkOnce(t, cmds, "last", []time.Time{sec(1), sec(31)}, nil)
		checkOnce(t, cmds, "none", []time.Time{sec(1), sec(30), sec(31)}, nil) // within MissedAfter
		checkOnce(t, cmds, "late", []time.Time{sec(1), sec(29), sec(30), sec(31)}, nil)
	})
}

// TestDisableEnableBackfill: a disabled trigger does not fire, an enabled
// one fires again from then on, and a backfill fires each tick of its
// range once, paced.
func TestDisableEnableBackfill(t *testing.T) {
	eachBroker(t, func(t *testing.T, kafka newKafka) {
		h := newHarness(t, kafka(t), func(c *Config) { c.BackfillBatch = 2 })
		h.start("a")
		h.applyFlow(newFlow("switch", 1, flowSource("switch", "*/1 * * * * *", "")))
		// The witness fires while switch is disabled: once it fired, the
		// scheduler has looked at the timers due then.
		h.applyFlow(newFlow("witness", 1, flowSource("witness", "*/1 * * * * *", "")))
		h.waitNext(ns, "switch", "tick", sec(1))
		h.waitNext(ns, "witness", "tick", sec(1))
		h.advance("switch", 2)
		ctx := t.Context()

		dis, err := h.svc.Disable(ctx, &kitev1.TriggerServiceDisableRequest{Namespace: ns, FlowId: "switch", TriggerId: "tick"})
		if err != nil || !dis.GetTrigger().GetDisabled() {
			t.Fatalf("Disable() = %v, %v", dis, err)
		}
		h.waitTrigger(ns, "switch", "tick", "disabled", func(tr *kitev1.Trigger) bool {
			return tr.GetDisabled() && tr.GetNextTime() == nil
		})
		h.advance("witness", 3) // ticks 3 to 5 of switch do not fire

		en, err := h.svc.Enable(ctx, &kitev1.TriggerServiceEnableRequest{Namespace: ns, FlowId: "switch", TriggerId: "tick"})
		if err != nil || en.GetTrigger().GetDisabled() || !en.GetTrigger().GetNextTime().AsTime().Equal(sec(6)) {
			t.Fatalf("Enable() = %v, %v", en, err)
		}
		h.waitNext(ns, "switch", "tick", sec(6))
		h.advance("switch", 1)

		inputs, _ := structpb.NewStruct(map[string]any{"day": "backfilled"})
		bf, err := h.svc.Backfill(ctx, &kitev1.TriggerServiceBackfillRequest{Namespace: ns, FlowId: "switch", TriggerId: "tick",
			Start: ts(sec(1).Add(-time.Millisecond)), End: ts(sec(6)), Inputs: inputs,
			Labels: []*kitev1.Label{{Key: "backfill", Value: "yes"}}})
		if err != nil || !bf.GetTrigger().GetBackfill().GetCurrent().AsTime().Equal(sec(1)) {
			t.Fatalf("Backfill() = %v, %v", bf, err)
		}
		// The first batch fires at once, then one batch per BackfillInterval.
		h.waitTrigger(ns, "switch", "tick", "the first batch", func(tr *kitev1.Trigger) bool {
			return tr.GetBackfill().GetCurrent().AsTime().Equal(sec(3))
		})
		_, err = h.svc.Backfill(ctx, &kitev1.TriggerServiceBackfillRequest{Namespace: ns, FlowId: "switch", TriggerId: "tick", Start: ts(sec(1))})
		if status.Code(err) != codes.FailedPrecondition {
			t.Errorf("second Backfill() = %v, want FailedPrecondition", err)
		}
		last := 6 // the last regular tick
		for h.trigger(ns, "switch", "tick").GetBackfill() != nil {
			h.advance("switch", 1)
			last++
		}
		if last < 8 {
			t.Errorf("the backfill of 5 ticks, 2 at a time, ended after %d intervals", last-6)
		}
		cmds := h.commands()
		checkOnce(t, cmds, "switch", append(secs(1, 2), secs(6, last)...), secs(1, 5))
		for _, c := range cmds {
			if c.GetCreate().GetFlowId() != "switch" {
				continue
			}
			if dates, backfilled := tickDates([]*eventv1.Command{c}, "switch"); len(backfilled) == 1 {
				if got := codec.FromStruct(c.GetCreate().GetInputs())["day"]; got != "backfilled" {
					t.Errorf("backfill of %s: input day %v, want the backfill's over the trigger's", backfilled[0], got)
				}
			} else if got := codec.FromStruct(c.GetCreate().GetInputs())["day"]; got != dates[0].Format(time.RFC3339) {
				t.Errorf("tick %s: input day %v", dates[0], got)
			}
		}
	})
}

// TestFlowUpdateAndDelete: a new revision with another cron reschedules the
// trigger, and runs the new revision; a trigger removed from the flow or a
// deleted flow stops firing.
func TestFlowUpdateAndDelete(t *testing.T) {
	eachBroker(t, func(t *testing.T, kafka newKafka) {
		h := newHarness(t, kafka(t))
		h.start("a")
		h.applyFlow(newFlow("update", 1, flowSource("update", "*/1 * * * * *", "")))
		h.waitNext(ns, "update", "tick", sec(1))
		h.advance("update", 1)

		h.applyFlow(newFlow("update", 2, flowSource("update", "*/5 * * * * *", "")))
		h.waitNext(ns, "update", "tick", sec(5))
		for range 9 {
			h.clock.Advance(time.Second)
			if now := h.clock.Now().Truncate(time.Second); now.Second()%5 == 0 {
				h.waitCommands("the tick of "+now.Format(time.RFC3339), hasDate("update", now))
			}
		}
		cmds := h.commands()
		checkOnce(t, cmds, "update", []time.Time{sec(1), sec(5), sec(10)}, nil)
		for _, c := range cmds {
			if d, _ := tickDates([]*eventv1.Command{c}, "update"); len(d) == 1 && d[0].After(sec(1)) && c.GetCreate().GetRevision() != 2 {
				t.Errorf("tick %s ran revision %d, want 2", d[0], c.GetCreate().GetRevision())
			}
		}

		// Revision 3 drops the webhook: its state goes, the schedule's stays.
		src := flowSource("update", "*/5 * * * * *", "")
		h.applyFlow(newFlow("update", 3, src[:len(src)-len("  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: secret\n")]))
		h.waitTrigger(ns, "update", "hook", "the webhook removed", func(tr *kitev1.Trigger) bool { return tr == nil })
		if tr := h.trigger(ns, "update", "tick"); !tr.GetNextTime().AsTime().Equal(sec(15)) {
			t.Errorf("schedule after the revision without the webhook: %v", tr)
		}

		h.applyFlow(&kitev1.Flow{Namespace: ns, Id: "update", Revision: 4, Source: src, Deleted: true})
		h.waitTrigger(ns, "update", "tick", "the trigger removed", func(tr *kitev1.Trigger) bool { return tr == nil })
		h.clock.Advance(10 * time.Second)
		// A flow applied after the deletion fires: the scheduler went past
		// the deleted flow's tick 15, which did not fire.
		h.applyFlow(newFlow("after", 1, flowSource("after", "*/1 * * * * *", "")))
		h.waitNext(ns, "after", "tick", sec(21))
		h.advance("after", 1)
		checkOnce(t, h.commands(), "update", []time.Time{sec(1), sec(5), sec(10)}, nil)
	})
}

// TestTriggerServiceErrors: the status codes TriggerService's contract names.
func TestTriggerServiceErrors(t *testing.T) {
	h := newHarness(t, fakeKafka(t))
	h.start("a")
	h.applyFlow(newFlow("errors", 1, flowSource("errors", "0 0 * * *", "")))
	h.waitNext(ns, "errors", "tick", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC))
	ctx := t.Context()
	backfill := func(trigger string, start, end time.Time) error {
		req := &kitev1.TriggerServiceBackfillRequest{Namespace: ns, FlowId: "errors", TriggerId: trigger, Start: ts(start)}
		if !end.IsZero() {
			req.End = ts(end)
		}
		_, err := h.svc.Backfill(ctx, req)
		return err
	}
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"enable unknown trigger", func() error {
			_, err := h.svc.Enable(ctx, &kitev1.TriggerServiceEnableRequest{Namespace: ns, FlowId: "errors", TriggerId: "nope"})
			return err
		}(), codes.NotFound},
		{"disable unknown flow", func() error {
			_, err := h.svc.Disable(ctx, &kitev1.TriggerServiceDisableRequest{Namespace: ns, FlowId: "nope", TriggerId: "tick"})
			return err
		}(), codes.NotFound},
		{"disable without trigger id", func() error {
			_, err := h.svc.Disable(ctx, &kitev1.TriggerServiceDisableRequest{Namespace: ns, FlowId: "errors"})
			return err
		}(), codes.InvalidArgument},
		{"backfill unknown trigger", backfill("nope", sec(-86400), time.Time{}), codes.NotFound},
		{"backfill a webhook", backfill("hook", sec(-86400), time.Time{}), codes.InvalidArgument},
		{"backfill end before start", backfill("tick", sec(-10), sec(-20)), codes.InvalidArgument},
		{"backfill end in the future", backfill("tick", sec(-86400), sec(3600)), codes.InvalidArgument},
		{"backfill without tick", backfill("tick", sec(-3600), sec(-60)), codes.InvalidArgument},
		{"backfill without start", func() error {
			_, err := h.svc.Backfill(ctx, &kitev1.TriggerServiceBackfillRequest{Namespace: ns, FlowId: "errors", TriggerId: "tick"})
			return err
		}(), codes.InvalidArgument},
		{"list flow without namespace", func() error {
			_, err := h.svc.List(ctx, &kitev1.TriggerServiceListRequest{FlowId: "errors"})
			return err
		}(), codes.InvalidArgument},
		{"list bad page token", func() error {
			_, err := h.svc.List(ctx, &kitev1.TriggerServiceListRequest{PageToken: "!"})
			return err
		}(), codes.InvalidArgument},
		{"backfill of the last day", backfill("tick", sec(-86400), time.Time{}), codes.OK},
	}
	for _, tt := range tests {
		if got := status.Code(tt.err); got != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, tt.err, tt.want)
		}
	}
}

// TestTriggerServiceList: List orders triggers by namespace, flow and
// trigger, filters by namespace prefix and flow, and pages.
func TestTriggerServiceList(t *testing.T) {
	h := newHarness(t, fakeKafka(t))
	h.start("a")
	flows := []*kitev1.Flow{
		{Namespace: "company", Id: "b", Revision: 1},
		{Namespace: "company.team", Id: "a", Revision: 1},
		{Namespace: "companyx", Id: "a", Revision: 1},
		{Namespace: "company", Id: "a", Revision: 1, Disabled: true},
	}
	for _, f := range flows {
		f.Source = flowSource(f.GetId(), "0 * * * *", "")
		f.Source = "id: " + f.GetId() + "\nnamespace: " + f.GetNamespace() + f.GetSource()[len("id: "+f.GetId()+"\nnamespace: company.team"):]
		h.applyFlow(f)
	}
	waitFor(t, "the triggers of every flow", func() bool {
		resp, err := h.svc.List(t.Context(), &kitev1.TriggerServiceListRequest{})
		return err == nil && len(resp.GetTriggers()) == 8
	})

	var got []string
	req := &kitev1.TriggerServiceListRequest{NamespacePrefix: "company", PageSize: 2}
	for pages := 0; ; pages++ {
		resp, err := h.svc.List(t.Context(), req)
		if err != nil || pages > 10 {
			t.Fatalf("List() = %v, %v", resp, err)
		}
		for _, tr := range resp.GetTriggers() {
			got = append(got, fmt.Sprintf("%s/%s/%s disabled=%v", tr.GetNamespace(), tr.GetFlowId(), tr.GetTriggerId(), tr.GetDisabled()))
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	want := []string{
		"company/a/hook disabled=true", "company/a/tick disabled=true",
		"company/b/hook disabled=false", "company/b/tick disabled=false",
		"company.team/a/hook disabled=false", "company.team/a/tick disabled=false",
	}
	if !slices.Equal(got, want) {
		t.Errorf("List(company) = %q, want %q", got, want)
	}
	resp, err := h.svc.List(t.Context(), &kitev1.TriggerServiceListRequest{NamespacePrefix: "company", FlowId: "a"})
	if err != nil || len(resp.GetTriggers()) != 2 || resp.GetTriggers()[0].GetNamespace() != "company" {
		t.Errorf("List(company, a) = %v, %v", resp, err)
	}
}

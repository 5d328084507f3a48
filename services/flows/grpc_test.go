package flows

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// startServer serves the FlowService of s on 127.0.0.1 and returns a client
// of it; both stop when the test ends.
func startServer(tb testing.TB, s *Store) kitev1.FlowServiceClient {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	kitev1.RegisterFlowServiceServer(srv, NewServer(s, testLogger(tb)))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(lis); err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	tb.Cleanup(func() { srv.Stop(); wg.Wait() })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return kitev1.NewFlowServiceClient(conn)
}

func wantCode(tb testing.TB, what string, err error, want codes.Code) {
	tb.Helper()
	if got := status.Code(err); got != want {
		tb.Errorf("%s = %v, want %v", what, err, want)
	}
}

func TestServer(t *testing.T) {
	eachBroker(t, func(t *testing.T, e *env) {
		c := startServer(t, startStore(t, e))
		ctx := waitCtx(t)
		v1, v2 := source("company.team", "hello", "one"), source("company.team", "hello", "two {{ outputs.x.value | nosuchfilter }}")

		applies := []struct {
			source       string
			wantRev      int32
			wantWarnings int
		}{{v1, 1, 0}, {v1, 1, 0}, {v2, 2, 1}}
		for _, a := range applies {
			resp, err := c.Apply(ctx, &kitev1.FlowServiceApplyRequest{Source: a.source})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if resp.GetFlow().GetRevision() != a.wantRev || len(resp.GetWarnings()) != a.wantWarnings {
				t.Errorf("Apply = revision %d with warnings %v; want revision %d with %d warnings",
					resp.GetFlow().GetRevision(), resp.GetWarnings(), a.wantRev, a.wantWarnings)
			}
		}

		gets := []struct {
			name       string
			req        *kitev1.FlowServiceGetRequest
			wantCode   codes.Code
			wantSource string
		}{
			{"latest", &kitev1.FlowServiceGetRequest{Namespace: "company.team", Id: "hello"}, codes.OK, v2},
			{"revision 1", &kitev1.FlowServiceGetRequest{Namespace: "company.team", Id: "hello", Revision: proto.Int32(1)}, codes.OK, v1},
			{"unknown revision", &kitev1.FlowServiceGetRequest{Namespace: "company.team", Id: "hello", Revision: proto.Int32(9)}, codes.NotFound, ""},
			{"unknown flow", &kitev1.FlowServiceGetRequest{Namespace: "company.team", Id: "nope"}, codes.NotFound, ""},
			{"revision 0", &kitev1.FlowServiceGetRequest{Namespace: "company.team", Id: "hello", Revision: proto.Int32(0)}, codes.InvalidArgument, ""},
			{"no namespace", &kitev1.FlowServiceGetRequest{Id: "hello"}, codes.InvalidArgument, ""},
		}
		for _, g := range gets {
			t.Run("get "+g.name, func(t *testing.T) {
				resp, err := c.Get(ctx, g.req)
				wantCode(t, "Get", err, g.wantCode)
				if got := resp.GetFlow().GetSource(); got != g.wantSource {
					t.Errorf("Get = %q, want %q", got, g.wantSource)
				}
			})
		}

		if _, err := c.Delete(ctx, &kitev1.FlowServiceDeleteRequest{Namespace: "company.team", Id: "hello"}); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		_, err := c.Get(ctx, &kitev1.FlowServiceGetRequest{Namespace: "company.team", Id: "hello"})
		wantCode(t, "Get after Delete", err, codes.NotFound)
		_, err = c.Delete(ctx, &kitev1.FlowServiceDeleteRequest{Namespace: "company.team", Id: "hello"})
		wantCode(t, "Delete again", err, codes.NotFound)
		list, err := c.List(ctx, &kitev1.FlowServiceListRequest{})
		if err != nil || len(list.GetFlows()) != 0 {
			t.Errorf("List after Delete = %v, %v; want no flow", list.GetFlows(), err)
		}

		resp, err := c.Apply(ctx, &kitev1.FlowServiceApplyRequest{Source: v1})
		if err != nil || resp.GetFlow().GetRevision() != 3 {
			t.Fatalf("Apply after Delete = %v, %v; want revision 3", resp, err)
		}

		// Revisions, a page of 2 at a time.
		var revs []int32
		var pages int
		for tok := ""; ; pages++ {
			resp, err := c.ListRevisions(ctx, &kitev1.FlowServiceListRevisionsRequest{
				Namespace: "company.team", Id: "hello", PageSize: 2, PageToken: tok})
			if err != nil {
				t.Fatalf("ListRevisions: %v", err)
			}
			revs = append(revs, revisionsOf(resp.GetRevisions())...)
			if tok = resp.GetNextPageToken(); tok == "" {
				break
			}
		}
		if !slices.Equal(revs, []int32{1, 2, 3}) || pages != 1 {
			t.Errorf("ListRevisions = %v in %d pages, want 1, 2, 3 in 2", revs, pages+1)
		}
		_, err = c.ListRevisions(ctx, &kitev1.FlowServiceListRevisionsRequest{Namespace: "company.team", Id: "nope"})
		wantCode(t, "ListRevisions(unknown flow)", err, codes.NotFound)
	})
}

// TestServerApplyInvalid: a flow with several errors is refused with every
// one of them, located, and nothing is stored.
func TestServerApplyInvalid(t *testing.T) {
	eachBroker(t, func(t *testing.T, e *env) {
		c := startServer(t, startStore(t, e))
		ctx := waitCtx(t)
		_, err := c.Apply(ctx, &kitev1.FlowServiceApplyRequest{Source: invalidSource})
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument {
			t.Fatalf("Apply = %v, want InvalidArgument", err)
		}
		var got []*errdetails.BadRequest_FieldViolation
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				got = append(got, br.GetFieldViolations()...)
			}
		}
		want := []struct{ field, desc string }{
			{"", `1:1: missing required property "id"`},
			{"", `1:1: missing required property "tasks"`},
			{"taks", `2:1: unknown property "taks"; did you mean "tasks"?`},
			{"concurrency", `7:3: missing required property "limit"`},
			{"concurrency.behavior", `7:13: invalid concurrency behavior "DROP"; allowed: QUEUE, CANCEL, FAIL`},
		}
		if len(got) != len(want) {
			t.Fatalf("Apply violations = %v, want %d", got, len(want))
		}
		for i, w := range want {
			if got[i].GetField() != w.field || !strings.HasPrefix(got[i].GetDescription(), w.desc) {
				t.Errorf("violation %d = %q: %q; want %q: %q…", i, got[i].GetField(), got[i].GetDescription(), w.field, w.desc)
			}
		}
		if !strings.Contains(st.Message(), "5 errors") {
			t.Errorf("Apply message = %q, want the count of errors", st.Message())
		}
		list, err := c.List(ctx, &kitev1.FlowServiceListRequest{})
		if err != nil || len(list.GetFlows()) != 0 {
			t.Errorf("List after an invalid Apply = %v, %v; want nothing stored", list.GetFlows(), err)
		}
	})
}

func TestServerValidate(t *testing.T) {
	c := startServer(t, startStore(t, fakeEnv(t)))
	type problem struct {
		line, column int32
		path         string
		severity     kitev1.Severity
	}
	tests := []struct {
		name   string
		source string
		want   []problem
	}{
		{"valid", source("company", "a", "hi"), nil},
		{"warning", source("company", "a", "{{ 1 + }}"), []problem{{9, 22, "tasks[0].message", kitev1.Severity_SEVERITY_WARNING}}},
		{"errors", invalidSource, []problem{
			{1, 1, "", kitev1.Severity_SEVERITY_ERROR},
			{1, 1, "", kitev1.Severity_SEVERITY_ERROR},
			{2, 1, "taks", kitev1.Severity_SEVERITY_ERROR},
			{7, 3, "concurrency", kitev1.Severity_SEVERITY_ERROR},
			{7, 13, "concurrency.behavior", kitev1.Severity_SEVERITY_ERROR},
		}},
		{"yaml syntax", "id: [a\n", []problem{{1, 1, "", kitev1.Severity_SEVERITY_ERROR}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Validate(waitCtx(t), &kitev1.FlowServiceValidateRequest{Source: tt.source})
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			var got []problem
			for _, p := range resp.GetProblems() {
				got = append(got, problem{p.GetLine(), p.GetColumn(), p.GetPath(), p.GetSeverity()})
				if p.GetMessage() == "" {
					t.Errorf("problem %v has no message", p)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate = %v, want %v", got, tt.want)
			}
		})
	}
	list, err := c.List(waitCtx(t), &kitev1.FlowServiceListRequest{})
	if err != nil || len(list.GetFlows()) != 0 {
		t.Errorf("List after Validate = %v, %v; want nothing stored", list.GetFlows(), err)
	}
}

func TestServerList(t *testing.T) {
	eachBroker(t, func(t *testing.T, e *env) {
		s := startStore(t, e)
		c := startServer(t, s)
		for _, k := range [][2]string{{"company", "b"}, {"company", "a"}, {"company.team", "a"}, {"companyx", "a"}, {"company.team", "c"}} {
			apply(t, s, source(k[0], k[1], "hi"))
		}
		tests := []struct {
			prefix    string
			pageSize  int32
			want      []string
			wantPages int
		}{
			{"company", 2, []string{"company/a", "company/b", "company.team/a", "company.team/c"}, 2},
			{"company", 3, []string{"company/a", "company/b", "company.team/a", "company.team/c"}, 2},
			{"", 0, []string{"company/a", "company/b", "company.team/a", "company.team/c", "companyx/a"}, 1},
			{"", 1, []string{"company/a", "company/b", "company.team/a", "company.team/c", "companyx/a"}, 5},
			{"nothing", 0, nil, 1},
		}
		for _, tt := range tests {
			t.Run(tt.prefix, func(t *testing.T) {
				var got []string
				pages := 0
				for tok := ""; ; {
					resp, err := c.List(waitCtx(t), &kitev1.FlowServiceListRequest{NamespacePrefix: tt.prefix, PageSize: tt.pageSize, PageToken: tok})
					if err != nil {
						t.Fatalf("List: %v", err)
					}
					pages++
					got = append(got, keysOf(resp.GetFlows())...)
					if tok = resp.GetNextPageToken(); tok == "" {
						break
					}
				}
				if !slices.Equal(got, tt.want) || pages != tt.wantPages {
					t.Errorf("List(%q, page size %d) = %v in %d pages; want %v in %d", tt.prefix, tt.pageSize, got, pages, tt.want, tt.wantPages)
				}
			})
		}

		_, err := c.List(waitCtx(t), &kitev1.FlowServiceListRequest{PageToken: "not a token!"})
		wantCode(t, "List(bad token)", err, codes.InvalidArgument)
		_, err = c.List(waitCtx(t), &kitev1.FlowServiceListRequest{PageSize: -1})
		wantCode(t, "List(negative page size)", err, codes.InvalidArgument)
	})
}

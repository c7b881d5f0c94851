package app

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/async"
)

// sinkRecords returns the invocation records asyncsink printed, by request id of the invocation
// they describe.
func sinkRecords(t *testing.T, n *Node, token string) map[string]async.Record {
	t.Helper()
	status, _, body := adminDo(t, n, http.MethodGet, "/admin/v1/functions/asyncsink/logs?limit=1000", token, "")
	if status != http.StatusOK {
		t.Fatalf("reading asyncsink's logs: %d %s", status, body)
	}
	out := map[string]async.Record{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec adminapi.LogRecord
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		line, ok := strings.CutPrefix(strings.TrimSpace(rec.Message), "RECORD ")
		if !ok {
			continue
		}
		var r async.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("asyncsink printed a record that does not decode: %v: %s", err, line)
		}
		out[r.RequestContext.RequestID] = r
	}
	return out
}

func waitSinkRecord(t *testing.T, n *Node, token, requestID string) async.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, ok := sinkRecords(t, n, token)[requestID]; ok {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no invocation record for request %s reached asyncsink", requestID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAsyncInvocation follows asynchronous invocations as a user makes them: Lambda's Invoke with
// InvocationType Event through the AWS SDK, and the admin API; their outcomes reach the destination
// function, failures are retried, and what fails without a destination is counted as a dead letter.
func TestAsyncInvocation(t *testing.T) {
	n, cfg, _ := awsNode(t, "testdata/async-stack.yaml")
	token := adminToken(t, n)
	lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String("http://" + n.AWSAddr()) })
	ctx := context.Background()

	t.Run("success reaches onSuccess", func(t *testing.T) {
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("asyncjob"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"n":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		if out.StatusCode != http.StatusAccepted || len(out.Payload) != 0 {
			t.Fatalf("Invoke Event: status %d, payload %q; want 202 and no payload", out.StatusCode, out.Payload)
		}
		// The record carries the invocation's request id: find it by its payload.
		var rec async.Record
		deadline := time.Now().Add(30 * time.Second)
		for found := false; !found; {
			for _, r := range sinkRecords(t, n, token) {
				if string(r.RequestPayload) == `{"n":1}` {
					rec, found = r, true
				}
			}
			if !found && time.Now().After(deadline) {
				t.Fatal("no Success record reached asyncsink")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if rec.RequestContext.Condition != "Success" || rec.RequestContext.ApproximateInvokeCount != 1 ||
			string(rec.ResponsePayload) != `{"done":{"n":1}}` || rec.ResponseContext.FunctionError != "" || rec.ResponseContext.ExecutedVersion != "1" {
			t.Errorf("record %+v, response %s", rec, rec.ResponsePayload)
		}
		if rec.RequestContext.FunctionARN != "arn:aws:lambda:us-east-1:000000000000:function:asyncjob:$LATEST" {
			t.Errorf("functionArn %q", rec.RequestContext.FunctionARN)
		}
	})

	t.Run("failure is retried then reaches onFailure", func(t *testing.T) {
		status, _, body := adminDo(t, n, http.MethodPost, "/admin/v1/functions/asyncjob/invocations?invocationType=Event", token, `{"fail":true}`)
		if status != http.StatusAccepted {
			t.Fatalf("admin async invoke: %d %s", status, body)
		}
		var q adminapi.Queued
		if err := json.Unmarshal([]byte(body), &q); err != nil || q.RequestID == "" {
			t.Fatalf("answer %s: want {\"requestId\": …}", body)
		}
		rec := waitSinkRecord(t, n, token, q.RequestID)
		if rec.RequestContext.Condition != "RetriesExhausted" || rec.RequestContext.ApproximateInvokeCount != 2 || rec.ResponseContext.FunctionError != "Unhandled" {
			t.Errorf("record %+v", rec)
		}
		var failure struct{ ErrorMessage, ErrorType string }
		if json.Unmarshal(rec.ResponsePayload, &failure) != nil || failure.ErrorMessage != "asked to fail" {
			t.Errorf("responsePayload %s: want the function's error", rec.ResponsePayload)
		}
	})

	t.Run("failure without a destination is a dead letter", func(t *testing.T) {
		status, _, body := adminDo(t, n, http.MethodPost, "/admin/v1/functions/plain/invocations", token, `{"fail":true}`)
		if status != http.StatusOK || !strings.Contains(body, "asked to fail") {
			t.Fatalf("a synchronous invocation is unchanged: %d %s", status, body)
		}
		req := newRequest(t, http.MethodPost, "http://"+n.AdminAddr()+"/admin/v1/functions/plain/invocations", strings.NewReader(`{"fail":true}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("X-Amz-Invocation-Type: Event: %d, want 202", resp.StatusCode)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, _, body := adminDo(t, n, http.MethodGet, "/admin/v1/queues", token, "")
			var ql adminapi.QueueList
			if status != http.StatusOK || json.Unmarshal([]byte(body), &ql) != nil {
				t.Fatalf("GET /admin/v1/queues: %d %s", status, body)
			}
			var plain adminapi.QueueStats
			for _, q := range ql.Queues {
				if q.Function == "plain" {
					plain = q
				}
			}
			if plain.DeadLetters == 1 && plain.InFlight == 0 && plain.Queued == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("queues %s: want plain with one dead letter", body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("dead letters are queued again by a re-drive", func(t *testing.T) {
		status, _, body := adminDo(t, n, http.MethodPost, "/admin/v1/queues/plain/redrive", token, "")
		var r adminapi.Redriven
		if status != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil || r.Queued != 1 {
			t.Fatalf("redrive: %d %s, want one queued again", status, body)
		}
		// It fails again ({"fail": true}), and is a dead letter again.
		deadline := time.Now().Add(30 * time.Second)
		for {
			stats, err := n.async.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			done := false
			for _, s := range stats {
				done = done || s.Function == "plain" && s.DeadLetters == 1 && s.Queued == 0 && s.InFlight == 0
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("queues %+v: want plain's event back among the dead letters", stats)
			}
			time.Sleep(100 * time.Millisecond)
		}
		status, _, body = adminDo(t, n, http.MethodGet, "/admin/v1/audit", token, "")
		if status != http.StatusOK || !strings.Contains(body, `"queue.redrive"`) {
			t.Errorf("the audit log has no re-drive: %d %s", status, body)
		}
	})

	t.Run("a route with invocationType event answers 202 at once", func(t *testing.T) {
		resp, err := client.Post("http://"+n.GatewayAddr()+"/jobs", "application/json", strings.NewReader(`{"job":"nightly"}`))
		if err != nil {
			t.Fatal(err)
		}
		var q adminapi.Queued
		err = json.NewDecoder(resp.Body).Decode(&q)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || err != nil || q.RequestID == "" || resp.Header.Get("apigw-requestid") != q.RequestID {
			t.Fatalf("POST /jobs: %d %+v (%v), request id header %q; want 202 {\"requestId\": …}", resp.StatusCode, q, err, resp.Header.Get("apigw-requestid"))
		}
		rec := waitSinkRecord(t, n, token, q.RequestID)
		var ev struct {
			RouteKey string `json:"routeKey"`
			Body     string `json:"body"`
		}
		if rec.RequestContext.Condition != "Success" || json.Unmarshal(rec.RequestPayload, &ev) != nil || ev.Body != `{"job":"nightly"}` || ev.RouteKey != "POST /jobs" {
			t.Errorf("record %+v: want the request's payload 2.0 event as requestPayload", rec)
		}
	})

	t.Run("the stack file's schedules are stored", func(t *testing.T) {
		js, err := n.jetStream()
		if err != nil {
			t.Fatal(err)
		}
		st, err := js.Stream(ctx, async.ScheduleStreamName("asynce2e"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetLastMsgForSubject(ctx, "gh.asynce2e.sched.rule.asyncsink.0")
		if err != nil {
			t.Fatalf("the schedule of asyncsink: %v", err)
		}
		if m.Header.Get("Nats-Schedule") != "0 0 12 ? * mon-fri" || m.Header.Get("Gh-Expression") != "cron(0 12 ? * MON-FRI *)" {
			t.Errorf("schedule headers %v", m.Header)
		}
		status, _, body := adminDo(t, n, http.MethodGet, "/admin/v1/schedules", token, "")
		var list adminapi.ScheduleList
		if status != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.Schedules) != 1 ||
			list.Schedules[0].Function != "asyncsink" || list.Schedules[0].Expression != "cron(0 12 ? * MON-FRI *)" || !list.Schedules[0].Next.IsZero() {
			t.Errorf("GET /admin/v1/schedules: %d %s; want asyncsink's schedule, not fired yet", status, body)
		}
	})

	t.Run("an event source receives what is published on its subjects", func(t *testing.T) {
		for _, body := range []string{"one", "fail", "two"} {
			status, _, resp := adminDo(t, n, http.MethodPost, "/admin/v1/events/orders.created", token, body)
			var p adminapi.Published
			if status != http.StatusAccepted || json.Unmarshal([]byte(resp), &p) != nil || p.Sequence == 0 {
				t.Fatalf("publish: %d %s", status, resp)
			}
		}
		if status, _, resp := adminDo(t, n, http.MethodPost, "/admin/v1/events/orders.*", token, "x"); status != http.StatusBadRequest {
			t.Errorf("publishing on a wildcard: %d %s, want 400", status, resp)
		}
		// "fail" is reported failed: delivered once more (maxReceiveCount 2), then a dead letter;
		// "one" and "two" are delivered once.
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, _, body := adminDo(t, n, http.MethodGet, "/admin/v1/functions/consumer/logs?limit=1000", token, "")
			if status != http.StatusOK {
				t.Fatalf("consumer's logs: %d", status)
			}
			count := map[string]int{}
			for _, line := range strings.Split(body, "\n") {
				var rec adminapi.LogRecord
				if json.Unmarshal([]byte(line), &rec) != nil {
					continue
				}
				if batch, ok := strings.CutPrefix(strings.TrimSpace(rec.Message), "BATCH "); ok {
					for _, b := range strings.Split(batch, ",") {
						count[b]++
					}
				}
			}
			stats, err := n.async.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			dead := uint64(0)
			for _, s := range stats {
				if s.Function == "consumer" && s.Source == "" {
					dead = s.DeadLetters
				}
			}
			if count["one"] == 1 && count["two"] == 1 && count["fail"] == 2 && dead == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("deliveries %v, dead letters %d: want one and two once, fail twice then a dead letter", count, dead)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("a function publishes through the SDK on the subjects it is allowed", func(t *testing.T) {
		status, _, body := adminDo(t, n, http.MethodPost, "/admin/v1/functions/publisher/invocations", token, `{"publish":{"subject":"orders.fromfn","data":"from-function"}}`)
		if status != http.StatusOK || body != `"published"` {
			t.Fatalf("publishing from a function: %d %s", status, body)
		}
		status, hdr, body := adminDo(t, n, http.MethodPost, "/admin/v1/functions/publisher/invocations", token, `{"publish":{"subject":"invoices.new","data":"x"}}`)
		if status != http.StatusOK || hdr.Get(adminapi.HeaderFunctionError) == "" || !strings.Contains(body, "not allowed") {
			t.Errorf("publishing on a subject not allowed: %d %s, want the function's error saying not allowed", status, body)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, _, logs := adminDo(t, n, http.MethodGet, "/admin/v1/functions/consumer/logs?limit=1000", token, "")
			if strings.Contains(logs, "BATCH from-function") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the consumer never received the message the function published")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		_, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nosuch"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)})
		if errorCode(err) != "ResourceNotFoundException" {
			t.Errorf("Event to a missing function: %v", err)
		}
		big := `{"b":"` + strings.Repeat("x", 1<<20) + `"}`
		_, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("asyncjob"), InvocationType: types.InvocationTypeEvent, Payload: []byte(big)})
		if errorCode(err) != "RequestTooLargeException" {
			t.Errorf("Event over 1 MiB: %v", err)
		}
		if status, _, body := adminDo(t, n, http.MethodPost, "/admin/v1/functions/plain/invocations?invocationType=Later", token, `{}`); status != http.StatusBadRequest {
			t.Errorf("invocationType=Later: %d %s, want 400", status, body)
		}
		if status, _, body := adminDo(t, n, http.MethodPost, "/admin/v1/functions/nosuch/invocations?invocationType=Event", token, `{}`); status != http.StatusNotFound {
			t.Errorf("admin Event to a missing function: %d %s, want 404", status, body)
		}
		if status, _, _ := adminDo(t, n, http.MethodGet, "/admin/v1/queues", "", ""); status != http.StatusUnauthorized {
			t.Errorf("queues without a token: %d, want 401", status)
		}
	})

	t.Run("event invoke configuration through the Lambda API", func(t *testing.T) {
		sink := "arn:aws:lambda:us-east-1:000000000000:function:asyncsink"
		put, err := lc.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("plain"),
			MaximumRetryAttempts: aws.Int32(0), MaximumEventAgeInSeconds: aws.Int32(3600),
			DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(sink)}}})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(put.MaximumEventAgeInSeconds) != 3600 || put.DestinationConfig == nil || put.DestinationConfig.OnFailure == nil ||
			aws.ToString(put.DestinationConfig.OnFailure.Destination) != sink {
			t.Errorf("PutFunctionEventInvokeConfig answered %+v", put)
		}
		got, err := lc.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("plain")})
		if err != nil || aws.ToInt32(got.MaximumRetryAttempts) != 0 || aws.ToInt32(got.MaximumEventAgeInSeconds) != 3600 {
			t.Fatalf("GetFunctionEventInvokeConfig: %+v %v", got, err)
		}
		// The new configuration applies: a failure goes to asyncsink at once.
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("plain"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"fail":true,"via":"config"}`)})
		if err != nil || out.StatusCode != http.StatusAccepted {
			t.Fatalf("Invoke Event: %+v %v", out, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for found := false; !found; time.Sleep(100 * time.Millisecond) {
			for _, r := range sinkRecords(t, n, token) {
				found = found || string(r.RequestPayload) == `{"fail":true,"via":"config"}` && r.RequestContext.Condition == "RetriesExhausted" && r.RequestContext.ApproximateInvokeCount == 1
			}
			if !found && time.Now().After(deadline) {
				t.Fatal("the failure never reached the destination set through the Lambda API")
			}
		}
		_, err = lc.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("plain"),
			DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:q")}}})
		if errorCode(err) != "InvalidParameterValueException" {
			t.Errorf("an SQS destination: %v, want InvalidParameterValueException", err)
		}
		if _, err := lc.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("plain")}); err != nil {
			t.Fatal(err)
		}
		if _, err := lc.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("plain")}); errorCode(err) != "ResourceNotFoundException" {
			t.Errorf("after DeleteFunctionEventInvokeConfig: %v, want ResourceNotFoundException", err)
		}
	})

	// A backlog of asynchronous work does not keep synchronous requests to another function from
	// being served.
	t.Run("backlog does not starve synchronous requests", func(t *testing.T) {
		const backlog = 10000
		for i := range backlog {
			if err := n.async.Enqueue(ctx, async.Event{Function: "plain", RequestID: "bl-" + strconv.Itoa(i), Payload: []byte(`{"i":` + strconv.Itoa(i) + `}`)}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 100 {
			resp, err := client.Get("http://" + n.GatewayAddr() + "/hello")
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d during the backlog: %d", i, resp.StatusCode)
			}
		}
		stats, err := n.async.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		left := uint64(0)
		for _, s := range stats {
			if s.Function == "plain" {
				left = s.Queued + uint64(s.InFlight)
			}
		}
		if left == 0 {
			t.Fatal("the backlog drained before the synchronous requests ended: the test showed nothing")
		}
		t.Logf("%d events of the backlog still queued after 100 synchronous requests", left)
	})
}

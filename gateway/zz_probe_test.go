package gateway

import (
	"context"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/bus"
)

type probeLog struct{ lines []string }

func (p *probeLog) Log(_ AccessLogDestination, line []byte) { p.lines = append(p.lines, string(line)) }

func TestZZProbe(t *testing.T) {
	def := `
type: rest
stages:
  dev:
    variables: {x: vx}
    accessLog: {format: '$context.requestId $context.status $context.error.message|$context.error.messageString|$context.error.responseType'}
    routeThrottles:
      GET /thr: {rate: 1, burst: 1}
    cache: {sizeMB: 0.5}
minimumCompressionSize: 0
authorizers:
  slow: {type: token, function: auth, timeout: 100ms}
routes:
  GET /x: {function: fn}
  GET /thr: {function: fn}
  GET /auth: {function: fn, authorization: {type: function, authorizer: slow}}
`
	pl := &probeLog{}
	ts, inv := startREST(t, Config{AccessLogs: pl, BodyLimit: 100}, def, "fn", "auth")
	t.Log(ts.get(t, "/prod/x"))
	t.Log(ts.get(t, "/dev/nowhere"))
	t.Log(ts.do(t, ts.request(t, "POST", "/dev/x", string(make([]byte, 200)))))
	t.Log(ts.get(t, "/dev/thr"))
	t.Log(ts.get(t, "/dev/thr"))
	inv.setScript(func(ctx context.Context, inv bus.Invocation) ([]byte, error) {
		if inv.Function == "auth" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return []byte(`{"statusCode":200,"body":"hello"}`), nil
	})
	t.Log(ts.get(t, "/dev/auth", "Authorization", "tok"))
	inv.setScript(answer(`{"principalId":"u","policyDocument":{"Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]},"context":{"nested":{"a":1}}}`))
	t.Log(ts.get(t, "/dev/auth", "Authorization", "tok2"))
	t.Log(inv.invocations()[len(inv.invocations())-1].Payload != nil)
	inv.setScript(answer(`{"statusCode":200,"body":"cached body"}`))
	t.Log(ts.get(t, "/dev/x", "Accept-Encoding", "gzip"))
	t.Log(ts.get(t, "/dev/x", "Accept-Encoding", "gzip"))
	t.Log(ts.do(t, ts.request(t, "HEAD", "/dev/x", "")))
	time.Sleep(10 * time.Millisecond)
	for _, l := range pl.lines {
		t.Log(l)
	}
}

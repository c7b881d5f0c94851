package app

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAccessLogs serves a stack whose stages write access logs to a file and to a log group, and
// reads them back: from the file, and with gatehouse logs --access.
func TestAccessLogs(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the stack has a Python function (.ci/run installs it)")
	}
	needSandbox(t)
	dir := t.TempDir()
	files := map[string]string{
		"fn/app.py": "def handler(event, context):\n    return {'statusCode': 200, 'body': 'hi'}\n",
		"gatehouse.yaml": `version: 1
name: access
functions:
  fn: {source: ./fn, runtime: python3.11, handler: app.handler}
apis:
  web:
    type: http
    stages:
      prod:
        accessLog: {format: json, destination: group:web-access}
      dev:
        accessLog:
          format: '$context.requestId $context.httpMethod $context.routeKey $context.status $context.responseLength'
          destination: file:logs/dev.log
    routes:
      GET /hi: {function: fn}
`,
	}
	writeTree(t, dir, files)
	n := startNode(t, filepath.Join(dir, "gatehouse.yaml"), newDataDir(t))
	base := "http://" + n.GatewayAddr()
	prod := do(t, newRequest(t, "GET", base+"/prod/hi", nil))
	missing := do(t, newRequest(t, "GET", base+"/prod/nope", nil))
	dev := do(t, newRequest(t, "GET", base+"/dev/hi", nil))
	if prod.status != 200 || dev.status != 200 || missing.status != 404 {
		t.Fatalf("requests: %d %d %d", prod.status, dev.status, missing.status)
	}

	wantFile := dev.header.Get("apigw-requestid") + " GET GET /hi 200 2\n"
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(filepath.Join(dir, "logs", "dev.log"))
		if string(data) == wantFile {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs/dev.log:\n%q\nwant %q", data, wantFile)
		}
		time.Sleep(20 * time.Millisecond)
	}

	var lines []string
	for {
		out := runCLI(t, n, "logs", "--access", "web/prod")
		lines = strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(lines) != 2 {
		t.Fatalf("gatehouse logs --access web/prod: %q, want two lines", lines)
	}
	for i, want := range []struct {
		r      response
		status string
	}{{prod, "200"}, {missing, "404"}} {
		var rec map[string]string
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil || rec["requestId"] != want.r.header.Get("apigw-requestid") || rec["status"] != want.status {
			t.Errorf("access line %d: %s (%v), want request %s with status %s", i, lines[i], err, want.r.header.Get("apigw-requestid"), want.status)
		}
	}
	if _, errOut, code := cliResult(n, "logs", "--access", "web/dev"); code == 0 || !strings.Contains(errOut, "writes its access log to file:") {
		t.Errorf("logs --access of a file destination: exit %d, %s", code, errOut)
	}
}

package app

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// rawExchange writes raw to addr and reads every response until the server closes the connection (or
// 5 s pass), returning the responses' statuses and whether the server closed the connection.
func rawExchange(t *testing.T, addr, raw string) (statuses []int, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return statuses, !(asNetError(err, &ne) && ne.Timeout())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
}

func asNetError(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// TestMalformedRequests sends what a request smuggler or a broken client sends, to the gateway and the
// admin listener: each is refused at once with its status, and the connection closed, so nothing
// hidden behind it is served.
func TestMalformedRequests(t *testing.T) {
	n := sharedNode(t)
	for _, listener := range []struct{ name, addr, path string }{
		{"gateway", n.GatewayAddr(), "/hello"},
		{"admin", n.AdminAddr(), "/healthz"},
	} {
		host := "Host: " + listener.addr + "\r\n"
		for _, tt := range []struct {
			name   string
			raw    string
			status int
		}{
			{"Content-Length and Transfer-Encoding, a request hidden behind", "POST " + listener.path + " HTTP/1.1\r\n" + host +
				"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET " + listener.path + " HTTP/1.1\r\n" + host + "\r\n", 400},
			{"conflicting Content-Length values", "POST " + listener.path + " HTTP/1.1\r\n" + host +
				"Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", 400},
			{"HTTP/9.9", "GET " + listener.path + " HTTP/9.9\r\n" + host + "\r\n", 505},
			{"a header line without a colon", "GET " + listener.path + " HTTP/1.1\r\n" + host + "NoColonHere\r\n\r\n", 400},
			{"101 header lines", "GET " + listener.path + " HTTP/1.1\r\n" + host + strings.Repeat("X-Pad: 1\r\n", 100) + "\r\n", 431},
			{"20 KiB of headers", "GET " + listener.path + " HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n", 431},
		} {
			t.Run(listener.name+"/"+tt.name, func(t *testing.T) {
				start := time.Now()
				statuses, closed := rawExchange(t, listener.addr, tt.raw)
				if len(statuses) != 1 || statuses[0] != tt.status || !closed {
					t.Fatalf("answered %v, connection closed: %v; want one %d and the connection closed", statuses, closed, tt.status)
				}
				if took := time.Since(start); took > 3*time.Second {
					t.Fatalf("answered after %s", took)
				}
			})
		}
		t.Run(listener.name+"/100 header lines are fine", func(t *testing.T) {
			statuses, _ := rawExchange(t, listener.addr, "GET "+listener.path+" HTTP/1.1\r\n"+host+strings.Repeat("X-Pad: 1\r\n", 98)+"Connection: close\r\n\r\n")
			if len(statuses) != 1 || statuses[0] != 200 {
				t.Fatalf("answered %v, want 200", statuses)
			}
		})
	}
}

// TestAdminRefusesUnauthenticatedUploadsFromHeaders: an upload without a token is answered 401 from
// its headers (and the first bytes of its body), not after the whole body.
func TestAdminRefusesUnauthenticatedUploadsFromHeaders(t *testing.T) {
	n := sharedNode(t)
	conn, err := net.Dial("tcp", n.AdminAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /admin/v1/functions HTTP/1.1\r\nHost: admin\r\nContent-Type: application/zip\r\nContent-Length: %d\r\n\r\n", 10<<20)
	conn.Write(make([]byte, 16<<10))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	if resp.StatusCode != 401 {
		t.Fatalf("got %d, want 401", resp.StatusCode)
	}
}

func TestAdminAddressIsLoopbackUnlessPublic(t *testing.T) {
	for _, tt := range []struct {
		addr   string
		public bool
		ok     bool
	}{
		{"127.0.0.1:8081", false, true},
		{"[::1]:8081", false, true},
		{"localhost:8081", false, true},
		{"0.0.0.0:8081", false, false},
		{":8081", false, false},
		{"192.0.2.10:8081", false, false},
		{"0.0.0.0:8081", true, true},
	} {
		err := checkAdminAddr(tt.addr, tt.public)
		if (err == nil) != tt.ok {
			t.Errorf("%s (public %v): %v", tt.addr, tt.public, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--admin-public") {
			t.Errorf("%s: %v does not say how to allow it", tt.addr, err)
		}
	}
}

// TestWorkersGetOnlyWhatTheyNeed: a worker's environment holds the bus's address and credentials and
// what a Go program needs, not up's environment (where the @connections secret may be).
func TestWorkersGetOnlyWhatTheyNeed(t *testing.T) {
	kept := workerEnv([]string{"PATH=/bin", "GOGC=50", "GATEHOUSE_SECRET_ACCESS_KEY=s3cret", "GATEHOUSE_TOKEN=t",
		"AWS_SECRET_ACCESS_KEY=k", "HOSTNAME=box", "LC_ALL=C"})
	if got := strings.Join(kept, " "); got != "PATH=/bin GOGC=50 LC_ALL=C" {
		t.Fatalf("kept %q", got)
	}
	n := sharedNode(t)
	allowed := map[string]bool{envBusURL: true, envBusUser: true, envBusPassword: true, envRunCLI: true}
	for _, kv := range workerEnv(os.Environ()) {
		name, _, _ := strings.Cut(kv, "=")
		allowed[name] = true
	}
	for id, pid := range n.WorkerPIDs() {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Skipf("no /proc: %v", err)
		}
		for _, kv := range strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00") {
			if name, _, _ := strings.Cut(kv, "="); !allowed[name] {
				t.Errorf("worker %s has %s in its environment", id, name)
			}
		}
	}
}

// TestFailuresCountedByReason: a malformed response is counted with its reason.
func TestFailuresCountedByReason(t *testing.T) {
	n := sharedNode(t)
	metric := `gatehouse_invocation_failures_total{function="respond",reason="malformed_response"}`
	before := metricValue(t, n, metric)
	// respond answers with its request body: here a structured response with a status no HTTP
	// response can have.
	req := newRequest(t, "POST", "http://"+n.GatewayAddr()+"/respond", strings.NewReader(`{"statusCode":99}`))
	req.Header.Set("Content-Type", "application/json")
	if r := do(t, req); r.status != 500 {
		t.Fatalf("a malformed response: %d %s", r.status, r.body)
	}
	if after := metricValue(t, n, metric); after != before+1 {
		t.Fatalf("%s went from %v to %v, want one more", metric, before, after)
	}
}

// TestVersion: `gatehouse version` and `--version` name the build and the parts it is built with.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errOut strings.Builder
		if code := Main(args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		want := []string{"gatehouse ", "go1."}
		if info, ok := debug.ReadBuildInfo(); ok && len(info.Deps) > 0 {
			// A test binary may record no dependencies; the gatehouse binary does.
			want = append(want, "wazero v", "nats-server v", "fiber v")
		}
		for _, want := range want {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v printed %q, missing %q", args, out.String(), want)
			}
		}
	}
}

// TestWhyItFailed: a function's panic reaches `gatehouse invoke` (Lambda's errorType, errorMessage and
// stack trace) and the function's logs, not only up's stderr.
func TestWhyItFailed(t *testing.T) {
	n := sharedNode(t)
	out, errOut, code := cliResult(n, "invoke", "echo", "--payload", `{"version":"2.0","rawPath":"/x","headers":{"x-echo-fail":"panic"}}`)
	if code != 1 || !strings.Contains(errOut, "function error: Runtime.Panic: ") || !strings.Contains(errOut, "\n\t") {
		t.Fatalf("invoke of a panicking function: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	// The same failure, as a record of the function's logs.
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs, _, _ := cliResult(n, "logs", "echo", "--limit", "50")
		if strings.Contains(logs, `"errorType":"Runtime.Panic"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the panic is not in the function's logs:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStackErrorsAfterParsingHavePositions: an error `up` finds in a function after the stack file
// parsed (here a module larger than its memory limit) names the file, line and column of the
// function, as the parser's own errors do.
func TestStackErrorsAfterParsingHavePositions(t *testing.T) {
	stack := writeStack(t, "version: 1\nname: positions\nfunctions:\n  big:\n    source: "+
		testfix.WAT(t, "runtimes/testdata/abi/big-memory.wat")+
		"\napis:\n  web:\n    type: http\n    routes:\n      GET /big: {function: big}\n")
	var out, errOut syncBuffer
	code := Main([]string{"up", "-f", stack, "--data", newDataDir(t), "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--aws-addr", "127.0.0.1:0"}, &out, &errOut)
	if want := stack + ":4:3: functions.big ("; code == 0 || !strings.Contains(errOut.String(), want) || !strings.Contains(errOut.String(), "memory limit too small") {
		t.Fatalf("exit %d, stderr %q; want %q and the reason", code, errOut.String(), want)
	}
}

// TestBusyPortSaysWhichFlag: a port in use stops up with the flag that changes it.
func TestBusyPortSaysWhichFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, flag := range []string{"--addr", "--admin-addr", "--aws-addr"} {
		args := []string{"up", "-f", "testdata/stack.yaml", "--data", newDataDir(t), "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--aws-addr", "127.0.0.1:0"}
		for i, a := range args {
			if a == flag {
				args[i+1] = ln.Addr().String()
			}
		}
		var out, errOut syncBuffer
		if code := Main(args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "("+flag+" changes it)") {
			t.Fatalf("up with %s on a busy port: exit %d, stderr %q", flag, code, errOut.String())
		}
	}
}

// Command bootstrap is a provided.al2023 runtime for runtimes/process's tests: a Lambda Runtime API
// loop with net/http whose behaviour each event selects ({"op": ...}). BOOTSTRAP_INIT selects an init
// failure: "error" (posts /runtime/init/error, exits 1), "exit" (exits 3), "hang" (never asks).
// It writes its pid to $TMPDIR/pid first.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var api = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"

type event struct {
	Op    string `json:"op"`
	Data  any    `json:"data,omitempty"`
	Ms    int    `json:"ms,omitempty"`
	Code  int    `json:"code,omitempty"`
	Bytes int    `json:"bytes,omitempty"`
	// Paths and Addrs are what "read" tries to read and "dial" to connect to.
	Paths []string `json:"paths,omitempty"`
	Addrs []string `json:"addrs,omitempty"`
	// URL is what "fetch" gets, through the proxy the environment names.
	URL string `json:"url,omitempty"`
}

func main() {
	if os.Getenv("BOOTSTRAP_CHILD") != "" { // a grandchild that only sleeps
		time.Sleep(time.Hour)
		return
	}
	_ = os.WriteFile(filepath.Join(os.Getenv("TMPDIR"), "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600)
	fmt.Println("bootstrap init")
	switch os.Getenv("BOOTSTRAP_INIT") {
	case "error":
		post("/init/error", `{"errorType":"Runtime.ImportModuleError","errorMessage":"Unable to import module 'app'","stackTrace":["line 1","line 2"]}`)
		os.Exit(1)
	case "exit":
		os.Exit(3)
	case "hang":
		time.Sleep(time.Hour)
	}
	for {
		res, err := http.Get(api + "/invocation/next")
		if err != nil {
			fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		id := res.Header.Get("Lambda-Runtime-Aws-Request-Id")
		var ev event
		if err := json.Unmarshal(body, &ev); err != nil {
			post("/invocation/"+id+"/error", `{"errorType":"Runtime.UnmarshalError","errorMessage":"bad event"}`)
			continue
		}
		handle(id, res.Header, ev, body)
	}
}

func handle(id string, h http.Header, ev event, raw []byte) {
	respond := func(v any) {
		b, _ := json.Marshal(v)
		post("/invocation/"+id+"/response", string(b))
	}
	switch ev.Op {
	case "echo":
		respond(map[string]any{
			"event":      json.RawMessage(raw),
			"requestId":  h.Get("Lambda-Runtime-Aws-Request-Id"),
			"deadlineMs": h.Get("Lambda-Runtime-Deadline-Ms"),
			"arn":        h.Get("Lambda-Runtime-Invoked-Function-Arn"),
			"traceId":    h.Get("Lambda-Runtime-Trace-Id"),
			"cwd":        must(os.Getwd()),
		})
	case "env":
		respond(os.Environ())
	case "error":
		post("/invocation/"+id+"/error", `{"errorType":"Custom.Boom","errorMessage":"boom","stackTrace":["at a","at b"]}`)
	case "sleep":
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		respond("slept")
	case "exit":
		os.Exit(ev.Code)
	case "sigkill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "big":
		post("/invocation/"+id+"/response", strings.Repeat("x", ev.Bytes))
	case "print":
		fmt.Println("out line 1")
		fmt.Println("out line 2")
		fmt.Fprintln(os.Stderr, "err line 1")
		respond("printed")
	case "spawn": // a grandchild in our process group, then hang
		cmd := exec.Command(must(os.Executable()))
		cmd.Env = append(os.Environ(), "BOOTSTRAP_CHILD=1")
		if err := cmd.Start(); err != nil {
			fatal(err)
		}
		_ = os.WriteFile(filepath.Join(os.Getenv("TMPDIR"), "child"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		time.Sleep(time.Hour)
	case "statuses": // what the Runtime API answers to requests out of place
		respond(map[string]int{
			"otherID":   post("/invocation/not-"+id+"/response", `"x"`),
			"otherPath": get(api + "/nothing"),
			"initError": post("/init/error", `{"errorType":"Late"}`),
		})
	case "whoami":
		host, _ := os.Hostname()
		respond(map[string]any{"uid": os.Getuid(), "gid": os.Getgid(), "pid": os.Getpid(), "hostname": host, "cwd": must(os.Getwd())})
	case "read": // each path's first 64 bytes (ev.Bytes when set), or the error reading it
		limit := 64
		if ev.Bytes > 0 {
			limit = ev.Bytes
		}
		out := map[string]string{}
		for _, p := range ev.Paths {
			if b, err := os.ReadFile(p); err != nil {
				out[p] = "error: " + err.Error()
			} else {
				out[p] = string(b[:min(len(b), limit)])
			}
		}
		respond(out)
	case "dial": // "ok" or the error connecting to each address
		out := map[string]string{}
		for _, a := range ev.Addrs {
			if c, err := net.DialTimeout("tcp", a, 2*time.Second); err != nil {
				out[a] = "error: " + err.Error()
			} else {
				c.Close()
				out[a] = "ok"
			}
		}
		respond(out)
	case "write": // bytes into $TMPDIR/fill: "ok" or the error
		f, err := os.Create(filepath.Join(os.Getenv("TMPDIR"), "fill"))
		if err == nil {
			chunk := make([]byte, 1<<20)
			for n := 0; n < ev.Bytes && err == nil; n += len(chunk) {
				_, err = f.Write(chunk[:min(len(chunk), ev.Bytes-n)])
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			respond("error: " + err.Error())
		} else {
			respond("ok")
		}
	case "alloc": // touches ev.Bytes of memory, then answers
		b := make([]byte, ev.Bytes)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		respond(len(b))
	case "fetch": // GET ev.URL: its status and body, or the error
		c := &http.Client{Timeout: 5 * time.Second}
		res, err := c.Get(ev.URL)
		if err != nil {
			respond(map[string]any{"error": err.Error()})
			break
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		respond(map[string]any{"status": res.StatusCode, "body": string(b)})
	case "twice":
		respond("first")
		respond("second") // 403; the first stands
	default:
		post("/invocation/"+id+"/error", `{"errorType":"Test.UnknownOp","errorMessage":"unknown op"}`)
	}
}

func post(path, body string) int {
	res, err := http.Post(api+path, "application/json", bytes.NewBufferString(body))
	if err != nil {
		fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func get(url string) int {
	res, err := http.Get(url)
	if err != nil {
		fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func must[T any](v T, err error) T {
	if err != nil {
		fatal(err)
	}
	return v
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bootstrap:", err)
	os.Exit(2)
}

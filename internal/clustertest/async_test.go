package clustertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// TestAsyncSurvivesKill queues asynchronous invocations through a route, kills `gatehouse up` with
// SIGKILL while some run and more wait, starts it again on the same data directory, and checks that
// every event ran (at least once), counting those that ran twice.
func TestAsyncSurvivesKill(t *testing.T) {
	skipShort(t)
	n := newNode(t, nodeConfig{name: "async", stack: filepath.Join("testdata", "async-stack.yaml"),
		args: []string{"--async-ack-wait", "3s", "--async-concurrency", "4"}})
	n.start(t)
	t.Cleanup(func() { n.terminate(t, 20*time.Second) })
	n.waitUp(t, 2*time.Minute)

	const events = 200
	for i := range events {
		body := fmt.Sprintf(`{"n":%d,"sleepMs":150}`, i)
		resp, err := httpClient.Post("http://"+n.addr+"/jobs", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /jobs %d: %d, want 202", i, resp.StatusCode)
		}
	}
	// 200 events of 150 ms, 4 at a time, take 7.5 s or more: kill while they run.
	time.Sleep(500 * time.Millisecond)
	before := sinkCounts(t, n)
	n.kill(t)
	if len(before) == events {
		t.Fatal("every event ran before the kill: the test showed nothing")
	}
	t.Logf("%d of %d events had run when up was killed", len(before), events)

	n.start(t)
	n.waitUp(t, 2*time.Minute)
	var counts map[int]int
	waitFor(t, "every queued event to have run", time.Minute, 250*time.Millisecond, func() (bool, string) {
		counts = sinkCounts(t, n)
		return len(counts) == events, fmt.Sprintf("%d of %d ran", len(counts), events)
	})
	twice := 0
	for _, c := range counts {
		if c > 1 {
			twice++
		}
	}
	t.Logf("every event ran to success; %d succeeded twice (an invocation killed mid-run is run again after the acknowledgement wait, without a success record of its first run)", twice)
}

// sinkCounts counts, by the event's n, the Success records sink printed.
func sinkCounts(t *testing.T, n *node) map[int]int {
	t.Helper()
	req, _ := http.NewRequest("GET", n.adminURL("/admin/v1/functions/sink/logs?limit=10000"), nil)
	req.Header.Set("Authorization", "Bearer "+n.adminToken(t))
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sink's logs: %d", resp.StatusCode)
	}
	counts := map[int]int{}
	sc := bufio.NewScanner(resp.Body)
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
		var r struct {
			RequestContext struct{ Condition string } `json:"requestContext"`
			RequestPayload json.RawMessage            `json:"requestPayload"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("sink printed %q: %v", line, err)
		}
		var ev struct {
			Body string `json:"body"`
		}
		var job struct{ N int }
		if r.RequestContext.Condition != "Success" || json.Unmarshal(r.RequestPayload, &ev) != nil ||
			json.NewDecoder(bytes.NewReader([]byte(ev.Body))).Decode(&job) != nil {
			t.Fatalf("sink printed %s: want a Success record of a POST /jobs event", line)
		}
		counts[job.N]++
	}
	return counts
}

// testAsync queues asynchronous invocations through one node's event route and sees every one
// succeed, counted through another node: the queue and the logs are the cluster's.
func testAsync(t *testing.T, on, reader *node) {
	const events = 40
	for i := range events {
		body := fmt.Sprintf(`{"n":%d,"sleepMs":50}`, i)
		resp, err := httpClient.Post("http://"+on.addr+"/jobs", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /jobs %d through %s: %d, want 202", i, on.name, resp.StatusCode)
		}
	}
	took := waitFor(t, "every event to have run", time.Minute, 250*time.Millisecond, func() (bool, string) {
		counts := sinkCounts(t, reader)
		return len(counts) == events, fmt.Sprintf("%d of %d ran", len(counts), events)
	})
	t.Logf("%d events queued through %s ran within %s, read through %s", events, on.name, took, reader.name)
}

package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// fakeLogs is a LogSource: Recent answers from records; Follow delivers what is sent on live.
type fakeLogs struct {
	records []adminapi.LogRecord
	live    chan adminapi.LogRecord
	// following is closed when a Follow starts; ended receives its result when it returns.
	following chan struct{}
	ended     chan error
}

func (f *fakeLogs) Recent(_ context.Context, function string, limit int) ([]adminapi.LogRecord, error) {
	var out []adminapi.LogRecord
	for _, r := range f.records {
		if r.Function == function {
			out = append(out, r)
		}
	}
	return out[max(0, len(out)-limit):], nil
}

func (f *fakeLogs) Follow(ctx context.Context, function string, each func(adminapi.LogRecord) error) (err error) {
	if f.live == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	close(f.following)
	defer func() { f.ended <- err }()
	for {
		select {
		case r := <-f.live:
			if err := each(r); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func logRecord(n int) adminapi.LogRecord {
	return adminapi.LogRecord{Time: time.Date(2026, 11, 25, 10, 5, n, 0, time.UTC), Function: "hello", Version: 1, RequestID: "r" + strconv.Itoa(n), Stream: "stdout", Worker: "w1", Message: "line " + strconv.Itoa(n)}
}

func newLogHarness(t *testing.T) (*harness, *fakeLogs) {
	logs := &fakeLogs{live: make(chan adminapi.LogRecord), following: make(chan struct{}), ended: make(chan error, 1)}
	for i := range 5 {
		logs.records = append(logs.records, logRecord(i))
	}
	h := newHarness(t, harnessOptions{logs: logs})
	h.want("POST", "/admin/v1/functions", bundle(t, "hello", "1"), 201, nil)
	return h, logs
}

func TestLogsRecent(t *testing.T) {
	h, _ := newLogHarness(t)
	status, header, body := h.do("GET", "/admin/v1/functions/hello/logs?limit=2", nil)
	if status != 200 || header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %v %s", status, header, body)
	}
	want := `{"time":"2026-11-25T10:05:03Z","function":"hello","version":1,"requestId":"r3","stream":"stdout","worker":"w1","message":"line 3"}` + "\n" +
		`{"time":"2026-11-25T10:05:04Z","function":"hello","version":1,"requestId":"r4","stream":"stdout","worker":"w1","message":"line 4"}` + "\n"
	if string(body) != want {
		t.Fatalf("body:\n%s\nwant:\n%s", body, want)
	}
	if _, _, body := h.do("GET", "/admin/v1/functions/hello/logs", nil); strings.Count(string(body), "\n") != 5 {
		t.Fatalf("default limit: %s", body)
	}
	h.wantError("GET", "/admin/v1/functions/nope/logs", nil, 404, "not found")
	h.wantError("GET", "/admin/v1/functions/hello/logs?limit=10001", nil, 400, "limit")
	h.wantError("GET", "/admin/v1/functions/hello/logs?follow=maybe", nil, 400, "follow")

	h2 := newHarness(t, harnessOptions{noLogs: true})
	h2.wantError("GET", "/admin/v1/functions/hello/logs", nil, 503, "function logs are not available")
}

// openFollow starts following the function's logs and returns the reader of the answer's lines.
func openFollow(t *testing.T, h *harness) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.base+"/admin/v1/functions/hello/logs?limit=1&follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("follow: %d %v", resp.StatusCode, resp.Header)
	}
	return resp, bufio.NewReader(resp.Body)
}

// nextRecord reads lines until one that is not a keep-alive.
func nextRecord(t *testing.T, r *bufio.Reader) adminapi.LogRecord {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if line == "\n" {
			continue
		}
		var rec adminapi.LogRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		return rec
	}
}

func TestLogsFollowEndsAtShutdown(t *testing.T) {
	h, logs := newLogHarness(t)
	_, r := openFollow(t, h)
	if rec := nextRecord(t, r); rec.Message != "line 4" {
		t.Fatalf("first record %+v", rec)
	}
	<-logs.following
	logs.live <- logRecord(9)
	if rec := nextRecord(t, r); rec.Message != "line 9" || rec.RequestID != "r9" {
		t.Fatalf("followed record %+v", rec)
	}
	// Keep-alive lines come while nothing happens.
	for range 2 {
		if line, err := r.ReadString('\n'); err != nil || line != "\n" {
			t.Fatalf("keep-alive: %q, %v", line, err)
		}
	}

	// Shutdown returns without its context's error: it ended the follower rather than waiting for it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a follower: %v", err)
	}
	select {
	case err := <-logs.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Follow returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Follow still running after Shutdown")
	}
	if rest, err := io.ReadAll(r); err != nil || strings.Trim(string(rest), "\n") != "" {
		t.Fatalf("after Shutdown: %q, %v", rest, err)
	}
}

func TestLogsFollowEndsWhenClientLeaves(t *testing.T) {
	h, logs := newLogHarness(t)
	resp, r := openFollow(t, h)
	nextRecord(t, r)
	<-logs.following
	resp.Body.Close()
	select {
	case err := <-logs.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Follow returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Follow still running after the client left")
	}
}

// TestShutdownClosesSilentConnections: a connection on which the client sent nothing does not hold
// Shutdown up; a request answered before it on another connection leaves that one idle, and it is
// closed too.
func TestShutdownClosesSilentConnections(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	if status, _, _ := h.do("GET", "/healthz", nil); status != 200 {
		t.Fatalf("healthz: %d", status)
	}
	silent, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (a silent connection held it up)", err)
	}
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the silent connection after Shutdown: read %d bytes, %v; want it closed", n, err)
	}
}

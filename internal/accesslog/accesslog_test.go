package accesslog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// run starts w and returns a func that stops it and waits.
func run(t *testing.T, w *Writer) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func TestDropsWhenFull(t *testing.T) {
	var out bytes.Buffer
	reg := prometheus.NewRegistry()
	w := New(Config{Stdout: &out, Queue: 4, Metrics: reg})
	for i := range 10 {
		w.Log("stdout", 0, []byte(fmt.Sprintf("line %d", i)))
	}
	if n := testutil.ToFloat64(w.dropped); n != 6 {
		t.Fatalf("gatehouse_access_log_dropped_total = %v after 10 lines with room for 4, want 6", n)
	}
	run(t, w)()
	if got := out.String(); got != "line 0\nline 1\nline 2\nline 3\n" {
		t.Errorf("written:\n%s", got)
	}
}

func TestFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "access.log")
	w := New(Config{})
	stop := run(t, w)
	line := strings.Repeat("x", 99) // 100 bytes with its newline
	for range 25 {
		w.Log("file:"+path, 1000, []byte(line))
	}
	stop()
	// 25 lines of 100 bytes in files of at most 1000: 10, 10 and 5 lines.
	for name, lines := range map[string]int{"access.log": 5, "access.log.1": 10, "access.log.2": 10} {
		data, err := os.ReadFile(filepath.Join(dir, "logs", name))
		if err != nil || strings.Count(string(data), "\n") != lines {
			t.Errorf("%s: %d lines, %v; want %d", name, strings.Count(string(data), "\n"), err, lines)
		}
	}
	// Rotated files beyond the kept count are removed.
	w = New(Config{})
	stop = run(t, w)
	for range 100 {
		w.Log("file:"+path, 1000, []byte(line))
	}
	stop()
	entries, _ := os.ReadDir(filepath.Join(dir, "logs"))
	if len(entries) != 6 {
		t.Errorf("%d files after many rotations, want the log and 5 rotated ones", len(entries))
	}
}

func TestGroupDestination(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]string{}
	w := New(Config{Group: func(group string, line []byte) {
		mu.Lock()
		defer mu.Unlock()
		got[group] = append(got[group], string(line))
	}})
	stop := run(t, w)
	w.Log("group:/aws/apigateway/shop", 0, []byte("a"))
	w.Log("group:other", 0, []byte("b"))
	w.Log("group:/aws/apigateway/shop", 0, []byte("c"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got["/aws/apigateway/shop"]) + len(got["other"])
		mu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if strings.Join(got["/aws/apigateway/shop"], ",") != "a,c" || strings.Join(got["other"], ",") != "b" {
		t.Errorf("groups got %v", got)
	}
}

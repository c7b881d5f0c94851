package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// envRunCLI makes the test binary act as the gatehouse command: workers are started that way, and tests
// run the command line in a subprocess.
const envRunCLI = "GATEHOUSE_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envRunCLI) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	shared.stop()
	os.Exit(code)
}

// cliCommand runs this test binary as the gatehouse command.
func cliCommand() ([]string, []string) {
	return []string{os.Args[0]}, []string{envRunCLI + "=1"}
}

// newDataDir makes a data directory whose build and compile caches are the ones all tests share, so
// fixtures are built and compiled once.
func newDataDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(testfix.BuildDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(testfix.CompileCacheDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"build": testfix.BuildDir(), "compile": testfix.CompileCacheDir()} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startNode starts a node on random loopback ports with real worker processes.
func startNode(t testing.TB, stackFile string, dataDir string, adjust ...func(*Options)) *Node {
	t.Helper()
	cmd, env := cliCommand()
	var logs syncBuffer
	opts := Options{
		StackFile:     stackFile,
		Addr:          "127.0.0.1:0",
		AdminAddr:     "127.0.0.1:0",
		DataDir:       dataDir,
		Workers:       2,
		Stdout:        io.Discard,
		Stderr:        &logs,
		WorkerCommand: cmd,
		WorkerEnv:     env,
	}
	for _, f := range adjust {
		f(&opts)
	}
	n, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("starting node: %v\nlogs:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", logs.String())
		}
	})
	return n
}

// sharedStack is the node most tests use: the stack in testdata/stack.yaml, started on first use and
// stopped after all tests.
type sharedStack struct {
	once sync.Once
	node *Node
	dir  string
}

var shared sharedStack

func sharedNode(t *testing.T) *Node {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
		// Data directories outside t.TempDir: the node outlives the first test that asks for it.
		ft := &fakeTB{TB: t, dir: dir}
		shared.node = startNode(ft, "testdata/stack.yaml", newDataDir(ft))
	})
	if shared.node == nil {
		t.Fatal("the shared node failed to start")
	}
	return shared.node
}

func (s *sharedStack) stop() {
	if s.node != nil {
		s.node.Stop(context.Background())
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// fakeTB gives startNode a TempDir that outlives one test.
type fakeTB struct {
	testing.TB
	dir string
	n   int
}

func (f *fakeTB) TempDir() string {
	f.n++
	d := filepath.Join(f.dir, fmt.Sprint(f.n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		f.Fatal(err)
	}
	return d
}

var client = &http.Client{Timeout: 30 * time.Second}

// syncBuffer collects output that goroutines write while the test reads it.
type syncBuffer = testfix.SyncBuffer

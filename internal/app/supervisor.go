package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// supervisor keeps n worker processes running: each is restarted when it exits, with a back-off while
// it keeps failing, until the supervisor is stopped.
type supervisor struct {
	command []string // executable and leading arguments
	args    func(id string) []string
	env     []string
	n       int
	grace   time.Duration
	log     *slog.Logger
	stderr  io.Writer
	// onExit, when set, is called after a worker process exits.
	onExit func(id string)

	mu       sync.Mutex
	pids     map[string]int
	restarts int
	wg       sync.WaitGroup
}

// start launches the workers; they run until ctx is done, then get SIGTERM and grace to finish before
// SIGKILL. wait waits for all of them.
func (s *supervisor) start(ctx context.Context) {
	s.pids = map[string]int{}
	for i := range s.n {
		id := fmt.Sprintf("w%d", i+1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.keep(ctx, id)
		}()
	}
}

func (s *supervisor) wait() { s.wg.Wait() }

func (s *supervisor) keep(ctx context.Context, id string) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		err := s.runOnce(ctx, id)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
		if time.Since(started) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		s.log.Warn("worker exited; restarting", "worker", id, "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (s *supervisor) runOnce(ctx context.Context, id string) error {
	cmd := exec.CommandContext(ctx, s.command[0], append(append([]string{}, s.command[1:]...), s.args(id)...)...)
	cmd.Env = s.env
	cmd.Stdout = s.stderr
	cmd.Stderr = s.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = s.grace
	cmd.SysProcAttr = workerProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting worker: %w", err)
	}
	s.mu.Lock()
	s.pids[id] = cmd.Process.Pid
	s.mu.Unlock()
	err := cmd.Wait()
	s.mu.Lock()
	delete(s.pids, id)
	s.mu.Unlock()
	if s.onExit != nil {
		s.onExit(id)
	}
	return err
}

// processes returns the running workers' process ids by worker id.
func (s *supervisor) processes() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.pids))
	for k, v := range s.pids {
		out[k] = v
	}
	return out
}

func (s *supervisor) restartCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

func selfExecutable() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return []string{exe}
}

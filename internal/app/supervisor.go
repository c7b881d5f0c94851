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

	"gatehouse.dev/gatehouse/scheduler"
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
	// onExit, when set, is called after a worker process exits, with the invocations whose guest code
	// it had entered recently (they may have run), those overdue (the watchdog killed it for them) and
	// the outcomes it had kept.
	onExit func(id string, started, effected, overdue []string, answers []scheduler.Answer)
	// slotsPath names a worker's slot table; "" disables the watchdog.
	slotsPath func(id string) string
	// slots is the number of invocations a worker may run at once.
	slots int
	// grace is how long past its deadline an invocation may run before its worker is killed.
	overrunGrace time.Duration

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
	var slots *scheduler.SlotReader
	if s.slotsPath != nil {
		path := s.slotsPath(id)
		if err := scheduler.CreateSlotsFile(path, s.slots); err != nil {
			return fmt.Errorf("creating slot table: %w", err)
		}
		r, err := scheduler.OpenSlotReader(path)
		if err != nil {
			return err
		}
		defer r.Close()
		slots = r
	}
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
	exited := make(chan struct{})
	var overdue []string
	var watchWG sync.WaitGroup
	if slots != nil {
		watchWG.Add(1)
		go func() {
			defer watchWG.Done()
			overdue = s.watch(id, cmd.Process, slots, exited)
		}()
	}
	err := cmd.Wait()
	close(exited)
	watchWG.Wait()
	s.mu.Lock()
	delete(s.pids, id)
	s.mu.Unlock()
	var started, effected []string
	var answers []scheduler.Answer
	if slots != nil {
		started = slots.Entered()
		effected = slots.Effected()
		answers = slots.Answers()
	}
	if s.onExit != nil {
		s.onExit(id, started, effected, overdue, answers)
	}
	return err
}

// watch kills the worker when an invocation overruns its deadline by more than the grace: its guest may
// be spinning in code that cannot be interrupted, freezing the whole worker. It returns the request ids
// of the overdue invocations.
func (s *supervisor) watch(id string, p *os.Process, slots *scheduler.SlotReader, exited <-chan struct{}) []string {
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return nil
		case now := <-tick.C:
			var overdue []string
			for _, r := range slots.Running() {
				if now.After(r.Deadline.Add(s.overrunGrace)) {
					overdue = append(overdue, r.RequestID)
				}
			}
			if len(overdue) > 0 {
				s.log.Warn("killing worker: invocation overran its timeout", "worker", id, "request_ids", overdue)
				p.Kill()
				return overdue
			}
		}
	}
}

// watchInterval is how often the watchdog reads the slot tables.
const watchInterval = 25 * time.Millisecond

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

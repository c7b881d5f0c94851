package app

import (
	"bufio"
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
	args    func(id, slotsPath string) []string
	env     []string
	n       int
	// idSuffix ends every worker id: in a cluster, "-" and the node's id, so that ids are unique
	// across nodes.
	idSuffix string
	grace    time.Duration
	log      *slog.Logger
	stderr   io.Writer
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

	// standby keeps a spare worker loaded, to replace one that exits at once.
	standby bool
	spare   chan *process

	mu         sync.Mutex
	pids       map[string]int
	standbyPID int
	restarts   int
	wg         sync.WaitGroup
}

// start launches the workers, and the standby when asked for; they run until ctx is done, then get
// SIGTERM and grace to finish before SIGKILL. wait waits for all of them.
func (s *supervisor) start(ctx context.Context) {
	s.pids = map[string]int{}
	if s.standby {
		s.spare = make(chan *process)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.keepStandby(ctx)
		}()
	}
	for i := range s.n {
		id := fmt.Sprintf("w%d", i+1) + s.idSuffix
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.keep(ctx, id)
		}()
	}
}

func (s *supervisor) wait() { s.wg.Wait() }

// keep keeps worker id running: a process that exits is replaced by the standby when one is ready
// (at once: it has loaded everything already), else by a new process, with a back-off while they
// keep failing.
func (s *supervisor) keep(ctx context.Context, id string) {
	backoff := 100 * time.Millisecond
	started := time.Now()
	err := s.runOnce(ctx, id)
	for ctx.Err() == nil {
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
		if time.Since(started) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		if p := s.takeStandby(id); p != nil {
			s.log.Warn("worker exited; the standby takes its place", "worker", id, "err", err)
			started = time.Now()
			err = s.supervise(id, p)
			continue
		}
		s.log.Warn("worker exited; restarting", "worker", id, "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
		started = time.Now()
		err = s.runOnce(ctx, id)
	}
}

// process is a started worker process.
type process struct {
	cmd   *exec.Cmd
	slots *scheduler.SlotReader // nil without a watchdog
	stdin io.WriteCloser        // a standby's: where its promotion is written
	ready chan struct{}         // a standby's: closed once it says it has loaded everything
	// ownSlots is a standby's slot table, named after it rather than the worker it becomes: removed
	// when it exits.
	ownSlots string
	done     chan struct{} // closed when the process has exited, with err set
	err      error
}

// launch starts a worker process named id with the slot table at slotsPath ("" for none).
func (s *supervisor) launch(ctx context.Context, id, slotsPath string, standby bool) (*process, error) {
	p := &process{}
	if slotsPath != "" {
		if err := scheduler.CreateSlotsFile(slotsPath, s.slots); err != nil {
			return nil, fmt.Errorf("creating slot table: %w", err)
		}
		r, err := scheduler.OpenSlotReader(slotsPath)
		if err != nil {
			return nil, err
		}
		p.slots = r
	}
	args := append(append([]string{}, s.command[1:]...), s.args(id, slotsPath)...)
	if standby {
		args = append(args, "--standby")
	}
	cmd := exec.CommandContext(ctx, s.command[0], args...)
	cmd.Env = s.env
	cmd.Stdout = s.stderr
	cmd.Stderr = s.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = s.grace
	cmd.SysProcAttr = workerProcAttr()
	var said *os.File // a standby's standard output: "ready" once loaded, then whatever it prints
	if standby {
		w, err := cmd.StdinPipe()
		if err != nil {
			p.close()
			return nil, err
		}
		p.stdin = w
		r, out, err := os.Pipe()
		if err != nil {
			p.close()
			return nil, err
		}
		defer out.Close()
		said, cmd.Stdout = r, out
		p.ready = make(chan struct{})
		p.ownSlots = slotsPath
	}
	p.cmd = cmd
	if err := cmd.Start(); err != nil {
		p.close()
		if said != nil {
			said.Close()
		}
		return nil, fmt.Errorf("starting worker: %w", err)
	}
	if said != nil {
		go func() {
			defer said.Close()
			br := bufio.NewReader(said)
			if line, err := br.ReadString('\n'); err == nil && line == standbyReady+"\n" {
				close(p.ready)
			}
			io.Copy(s.stderr, br)
		}()
	}
	p.done = make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) close() {
	if p.slots != nil {
		p.slots.Close()
	}
	if p.ownSlots != "" {
		os.Remove(p.ownSlots)
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
}

func (s *supervisor) runOnce(ctx context.Context, id string) error {
	path := ""
	if s.slotsPath != nil {
		path = s.slotsPath(id)
	}
	p, err := s.launch(ctx, id, path, false)
	if err != nil {
		return err
	}
	return s.supervise(id, p)
}

// supervise watches worker id's process until it exits, then reports what it left behind.
func (s *supervisor) supervise(id string, p *process) error {
	defer p.close()
	s.mu.Lock()
	s.pids[id] = p.cmd.Process.Pid
	s.mu.Unlock()
	exited := make(chan struct{})
	var overdue []string
	var watchWG sync.WaitGroup
	if p.slots != nil {
		watchWG.Add(1)
		go func() {
			defer watchWG.Done()
			overdue = s.watch(id, p.cmd.Process, p.slots, exited)
		}()
	}
	<-p.done
	err := p.err
	close(exited)
	watchWG.Wait()
	s.mu.Lock()
	delete(s.pids, id)
	s.mu.Unlock()
	var started, effected []string
	var answers []scheduler.Answer
	if p.slots != nil {
		started = p.slots.Entered()
		effected = p.slots.Effected()
		answers = p.slots.Answers()
	}
	if s.onExit != nil {
		s.onExit(id, started, effected, overdue, answers)
	}
	return err
}

// keepStandby keeps one standby worker: a process that has loaded every live function version and
// follows the registry, but takes no invocations until it replaces a worker that exited. Replacing
// one then costs a line on its standard input instead of starting a process and loading modules.
func (s *supervisor) keepStandby(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for n := 1; ctx.Err() == nil; n++ {
		id := fmt.Sprintf("standby%d", n) + s.idSuffix
		path := ""
		if s.slotsPath != nil {
			path = s.slotsPath(id)
		}
		p, err := s.launch(ctx, id, path, true)
		if err == nil {
			// Offered once loaded, until taken; one that exits first is started again.
			offer := s.spare
			select {
			case <-p.ready:
			case <-p.done:
				offer = nil
			case <-ctx.Done():
			}
			if offer != nil {
				s.setStandbyPID(p.cmd.Process.Pid)
			}
			select {
			case <-ctx.Done():
				s.setStandbyPID(0)
				<-p.done
				p.close()
				return
			case <-p.done:
				s.setStandbyPID(0)
				err = p.err
				p.close()
			case offer <- p:
				s.setStandbyPID(0)
				// Taken: the worker it replaces supervises it from now on.
				backoff = 100 * time.Millisecond
				continue
			}
		}
		s.log.Warn("standby worker exited; restarting", "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (s *supervisor) setStandbyPID(pid int) {
	s.mu.Lock()
	s.standbyPID = pid
	s.mu.Unlock()
}

// standby returns the process id of the loaded standby worker, 0 when there is none.
func (s *supervisor) readyStandby() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.standbyPID
}

// standbyReady is the line a standby worker prints once it has loaded every live version.
const standbyReady = "ready"

// takeStandby promotes the standby, when one is running, to worker id, and returns it.
func (s *supervisor) takeStandby(id string) *process {
	if s.spare == nil {
		return nil
	}
	select {
	case p := <-s.spare:
		if _, err := io.WriteString(p.stdin, id+"\n"); err != nil {
			s.log.Warn("promoting the standby worker", "err", err)
		}
		return p
	default:
		return nil
	}
}

// watch kills the worker when an invocation overruns its deadline by more than the grace and the
// worker is frozen (its beat is older than frozenAfter), or overruns it by more than lastResort
// whatever the beat says. Guests stop themselves at their deadline, at a safepoint; an invocation
// late with a fresh beat is in a busy worker, whose answer is coming. What this catches is a worker
// stalled where no safepoint reaches. It returns the request ids of the overdue invocations.
func (s *supervisor) watch(id string, p *os.Process, slots *scheduler.SlotReader, exited <-chan struct{}) []string {
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return nil
		case now := <-tick.C:
			var overdue []string
			kill := false
			frozen := now.Sub(slots.Beat()) > frozenAfter
			for _, r := range slots.Running() {
				if now.After(r.Deadline.Add(s.overrunGrace)) {
					overdue = append(overdue, r.RequestID)
					kill = kill || frozen || now.After(r.Deadline.Add(lastResort))
				}
			}
			if kill {
				s.log.Warn("killing worker: invocation overran its timeout", "worker", id, "request_ids", overdue, "frozen", frozen)
				p.Kill()
				return overdue
			}
		}
	}
}

// watchInterval is how often the watchdog reads the slot tables.
const watchInterval = 25 * time.Millisecond

// frozenAfter is how old a worker's beat (written every scheduler.BeatInterval) may grow before the
// worker counts as frozen; lastResort is how long past its deadline an invocation may run in a
// worker that still beats.
const (
	frozenAfter = 1 * time.Second
	lastResort  = 5 * time.Second
)

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

package process

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroup is one process's control groups: memory (its limit, and the out-of-memory kills counted
// there) and pids (how many processes and threads it may have), in cgroup v2 or the v1 hierarchies,
// whichever the node has the controller on. Written by hand: the files are few and the well-kept
// libraries for them pull in a container runtime's worth of dependencies.
type cgroup struct {
	memory string // the memory cgroup's directory; "" when the node has no usable memory controller
	pids   string // the pids cgroup's directory, or ""
	v2     bool   // memory is a cgroup v2 directory (memory.max, memory.events)
}

// cgroupParent is the directory under each hierarchy that Gatehouse's process cgroups go in, below
// the worker's own cgroup.
const cgroupParent = "gatehouse"

// newCgroup makes the cgroups of one process, named name, with a memory limit of memBytes and at most
// maxProcs processes and threads; add puts the process in them. It does what the node allows: a
// controller the node does not have, or does not let this user write, is left out (hasMemory tells).
func newCgroup(name string, memBytes int64, maxProcs int) (*cgroup, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return &cgroup{}, err
	}
	c := &cgroup{}
	var errs []error
	if dir, v2, err := makeCgroup(mounts, "memory", name); err == nil {
		limits := [][2]string{{"memory.limit_in_bytes", strconv.FormatInt(memBytes, 10)}}
		if v2 {
			limits = [][2]string{{"memory.max", strconv.FormatInt(memBytes, 10)}, {"memory.swap.max", "0"}}
		} else if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil {
			// Memory and swap together: a process cannot go past its limit by swapping.
			limits = append(limits, [2]string{"memory.memsw.limit_in_bytes", strconv.FormatInt(memBytes, 10)})
		}
		if err := writeLimits(dir, limits); err != nil {
			errs = append(errs, err)
			_ = os.Remove(dir)
		} else {
			c.memory, c.v2 = dir, v2
		}
	} else {
		errs = append(errs, err)
	}
	if dir, _, err := makeCgroup(mounts, "pids", name); err == nil {
		if err := writeLimits(dir, [][2]string{{"pids.max", strconv.Itoa(maxProcs)}}); err != nil {
			errs = append(errs, err)
			_ = os.Remove(dir)
		} else {
			c.pids = dir
		}
	} else {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// writeLimits writes the limits (file, value) in dir.
func writeLimits(dir string, limits [][2]string) error {
	for _, l := range limits {
		if err := os.WriteFile(filepath.Join(dir, l[0]), []byte(l[1]), 0); err != nil && l[0] != "memory.swap.max" {
			return fmt.Errorf("cgroup %s: %w", l[0], err)
		}
	}
	return nil
}

// add puts the process pid in the cgroups; a cgroup that refuses it is removed and not used.
func (c *cgroup) add(pid int) error {
	var errs []error
	for _, dir := range []*string{&c.memory, &c.pids} {
		if *dir == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(*dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			errs = append(errs, fmt.Errorf("cgroup: adding process %d: %w", pid, err))
			_ = os.Remove(*dir)
			*dir = ""
		}
	}
	return errors.Join(errs...)
}

// hasMemory reports whether the process's memory is limited by its cgroup.
func (c *cgroup) hasMemory() bool { return c != nil && c.memory != "" }

// peakMemory is the most memory the cgroup's processes have used at once, in bytes; 0 when unknown.
func (c *cgroup) peakMemory() uint64 {
	if !c.hasMemory() {
		return 0
	}
	file := "memory.max_usage_in_bytes"
	if c.v2 {
		file = "memory.peak"
	}
	data, err := os.ReadFile(filepath.Join(c.memory, file))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	return n
}

// oomKills is how many processes of the cgroup the kernel killed for going past its memory limit.
func (c *cgroup) oomKills() int {
	if !c.hasMemory() {
		return 0
	}
	file, key := "memory.oom_control", "oom_kill"
	if c.v2 {
		file = "memory.events"
	}
	data, err := os.ReadFile(filepath.Join(c.memory, file))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == key {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// remove deletes the cgroups once the processes in them are gone (which follows their leader's exit
// by a moment).
func (c *cgroup) remove() {
	if c == nil {
		return
	}
	for _, dir := range []string{c.memory, c.pids} {
		if dir == "" {
			continue
		}
		for i := 0; i < 50; i++ {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// cgroupMount is where one hierarchy is mounted and which part of it the worker is in.
type cgroupMount struct {
	dir string // the worker's own cgroup's directory in this hierarchy
	v2  bool
}

// cgroupMounts maps each controller (memory, pids) to the worker's cgroup directory in the hierarchy
// that has it: a v1 hierarchy with the controller, else the v2 one.
func cgroupMounts() (map[string]cgroupMount, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	paths := map[string]string{} // controller ("" for v2) -> the worker's path in its hierarchy
	for line := range strings.Lines(string(self)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			paths[""] = f[2]
			continue
		}
		for _, ctl := range strings.Split(f[1], ",") {
			paths[ctl] = f[2]
		}
	}
	out := map[string]cgroupMount{}
	sc := bufio.NewScanner(bytes.NewReader(info))
	for sc.Scan() {
		// mountinfo: id parent major:minor root mountpoint options ... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		root, mnt := f[3], f[4]
		switch g[0] {
		case "cgroup":
			for _, ctl := range []string{"memory", "pids"} {
				if p, ok := paths[ctl]; ok && hasOption(g[2], ctl) {
					out[ctl] = cgroupMount{dir: join(mnt, root, p)}
				}
			}
		case "cgroup2":
			p, ok := paths[""]
			if !ok {
				continue
			}
			dir := join(mnt, root, p)
			ctls, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
			if err != nil {
				continue
			}
			for _, ctl := range strings.Fields(string(ctls)) {
				if _, v1 := out[ctl]; !v1 && (ctl == "memory" || ctl == "pids") {
					out[ctl] = cgroupMount{dir: dir, v2: true}
				}
			}
		}
	}
	return out, sc.Err()
}

func hasOption(opts, name string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// join is the directory of cgroup path p in a hierarchy whose root (a part of it) is mounted at mnt.
func join(mnt, root, p string) string {
	if rel, err := filepath.Rel(root, p); err == nil && filepath.IsLocal(rel) {
		return filepath.Join(mnt, rel)
	}
	return mnt // p is outside what is mounted (a cgroup namespace): the mount is the worker's own
}

// makeCgroup makes the cgroup called name for a controller, under the worker's own cgroup.
func makeCgroup(mounts map[string]cgroupMount, ctl, name string) (string, bool, error) {
	m, ok := mounts[ctl]
	if !ok {
		return "", false, fmt.Errorf("cgroup: no %s controller", ctl)
	}
	parent := filepath.Join(m.dir, cgroupParent)
	if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", false, fmt.Errorf("cgroup: %w", err)
	}
	if m.v2 {
		// A v2 child has the controller only when its parent hands it down; that can fail (a parent
		// with processes of its own), and then the controller is not used.
		_ = os.WriteFile(filepath.Join(m.dir, "cgroup.subtree_control"), []byte("+"+ctl), 0)
		_ = os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+"+ctl), 0)
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", false, fmt.Errorf("cgroup: %w", err)
	}
	if m.v2 {
		probe := "memory.max"
		if ctl == "pids" {
			probe = "pids.max"
		}
		if _, err := os.Stat(filepath.Join(dir, probe)); err != nil {
			_ = os.Remove(dir)
			return "", false, fmt.Errorf("cgroup: the %s controller is not delegated to %s", ctl, parent)
		}
	}
	return dir, m.v2, nil
}

// cgroupName names a process's cgroups after the worker that makes them (its pid) and at random:
// RemoveStaleCgroups can tell a dead worker's from a live one's.
func cgroupName(workerPid int) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "process-" + strconv.Itoa(workerPid) + "-" + hex.EncodeToString(b[:])
}

// RemoveStaleCgroups removes the cgroups that workers no longer running left behind (a worker killed
// before it could remove its processes' cgroups), and returns how many. A cgroup of a live worker,
// or one with a process still in it, stays.
func RemoveStaleCgroups() int {
	mounts, err := cgroupMounts()
	if err != nil {
		return 0
	}
	removed := 0
	for _, m := range mounts {
		entries, err := os.ReadDir(filepath.Join(m.dir, cgroupParent))
		if err != nil {
			continue
		}
		for _, e := range entries {
			rest, ok := strings.CutPrefix(e.Name(), "process-")
			if !e.IsDir() || !ok {
				continue
			}
			pidText, _, _ := strings.Cut(rest, "-")
			pid, err := strconv.Atoi(pidText)
			if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
				continue
			}
			if os.Remove(filepath.Join(m.dir, cgroupParent, e.Name())) == nil {
				removed++
			}
		}
	}
	return removed
}

package tlsconf

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ReloadDelay is how long Watch gathers file events before it reloads: a change is served at most
// this long after its first event, and the events of one change (an editor's write, rename and
// chmod; a truncate then a write) cause one reload. The delay is counted from the first event, not
// the last, so a directory that changes all the time cannot hold reloads back.
const ReloadDelay = 100 * time.Millisecond

// Watching returns a channel that is closed once [Store.Watch] has put its watches in place: a
// change made to a certificate's files after that is seen.
func (s *Store) Watching() <-chan struct{} { return s.watching }

// Watch reloads certificates when their files change, until ctx is done; it then returns nil.
//
// It watches the directories that hold the certificate and key files (and, when a file is a
// symbolic link, the directory of the file it points to), not the files themselves, so it sees
// every way a file is replaced: written in place, renamed over by an editor or a tool that writes a
// temporary file first, or swapped by changing a symbolic link, as Kubernetes does when it updates
// a mounted Secret (cert.pem → ..data/cert.pem, with ..data renamed to point at a new directory).
// Any event in those directories leads, [ReloadDelay] later, to a check of every certificate whose
// file content changed; those are reloaded as by [Store.Reload]. A certificate whose new files do
// not load (a half-written file, a key that does not match, a certificate that no longer covers
// its names) keeps serving the one loaded before, and an error is logged once for that content.
// Certificates added while Watch runs are watched too.
//
// Watch runs at most once at a time per Store.
//
// # Errors
//
// An error when the watcher cannot start, when Watch is already running, or when the watcher
// stops unexpectedly.
func (s *Store) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("tlsconf: watching certificate files: %w", err)
	}
	defer w.Close()

	s.mu.Lock()
	if s.watcher != nil {
		s.mu.Unlock()
		return errors.New("tlsconf: the certificate store is already being watched")
	}
	s.watcher, s.dirs = w, map[string]bool{}
	for _, e := range s.entries {
		s.watchEntryLocked(e)
	}
	s.reloadLocked(false) // what changed between Add and now; failures are logged
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.watcher, s.dirs = nil, nil
		s.mu.Unlock()
	}()
	s.watchingOnce.Do(func() { close(s.watching) })

	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("tlsconf: the certificate file watcher stopped")
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				s.forgetDir(ev.Name)
			}
			if fire == nil {
				timer = time.NewTimer(ReloadDelay)
				fire = timer.C
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("tlsconf: the certificate file watcher stopped")
			}
			s.log.Warn("certificate file watcher error", logKeyError, err.Error())
		case <-fire:
			fire = nil
			s.mu.Lock()
			s.reloadLocked(false)
			s.mu.Unlock()
		}
	}
}

// watchEntryLocked adds watches on the directories of an entry's files and of the files their
// symbolic links point to. A directory that cannot be watched is logged and skipped: its
// certificates then change only through Reload.
func (s *Store) watchEntryLocked(e *entry) {
	for _, f := range []string{e.certFile, e.keyFile} {
		dirs := []string{filepath.Dir(f)}
		if target, err := filepath.EvalSymlinks(f); err == nil {
			dirs = append(dirs, filepath.Dir(target))
		}
		for _, d := range dirs {
			if abs, err := filepath.Abs(d); err == nil {
				d = abs
			}
			if s.dirs[d] {
				continue
			}
			if err := s.watcher.Add(d); err != nil {
				s.log.Warn("cannot watch a certificate directory; its changes need a reload", "dir", d,
					logKeyError, err.Error())
				continue
			}
			s.dirs[d] = true
		}
	}
}

// forgetDir drops a watched directory that was removed or renamed (the watch went with it), so that
// it is watched again should a symbolic link point into a directory of that name later.
func (s *Store) forgetDir(name string) {
	if abs, err := filepath.Abs(name); err == nil {
		name = abs
	}
	s.mu.Lock()
	if s.dirs[name] {
		delete(s.dirs, name)
		_ = s.watcher.Remove(name) // already gone with the directory, most likely
	}
	s.mu.Unlock()
}

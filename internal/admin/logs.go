package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/apistore"
	"gatehouse.dev/gatehouse/internal/logstream"
	"gatehouse.dev/gatehouse/internal/spec"
)

// LogSource reads function logs.
type LogSource interface {
	// Recent returns the function's last limit records, oldest first.
	Recent(ctx context.Context, function string, limit int) ([]adminapi.LogRecord, error)
	// Follow calls each with every record of the function written from now on, until ctx is done
	// (then it returns nil or ctx's error) or each returns an error (which it returns).
	Follow(ctx context.Context, function string, each func(adminapi.LogRecord) error) error
}

// Limits of the list endpoints.
const (
	// DefaultListLimit is the number of log records or audit entries answered without ?limit.
	DefaultListLimit = 100
	// MaxListLimit bounds ?limit.
	MaxListLimit = 10000
	// logKeepAlive is how often a log follower with nothing to send writes an empty line, so that a
	// client that went away is noticed.
	logKeepAlive = 15 * time.Second
	// followBuffer is how many records a follower may have waiting to be written.
	followBuffer = 256
)

// listLimit reads ?limit: DefaultListLimit without it, 0 to MaxListLimit with it.
func listLimit(c *fiber.Ctx) (int, error) {
	q := c.Query("limit")
	if q == "" {
		return DefaultListLimit, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 0 || n > MaxListLimit {
		return 0, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("limit %q: want a number from 0 to %d", q, MaxListLimit))
	}
	return n, nil
}

// logQuery reads a log request's ?limit and ?follow, once the node has logs to read.
func (s *Server) logQuery(c *fiber.Ctx) (limit int, follow bool, err error) {
	if limit, err = listLimit(c); err != nil {
		return 0, false, err
	}
	if q := c.Query("follow"); q != "" {
		if follow, err = strconv.ParseBool(q); err != nil {
			return 0, false, fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("follow %q: want true or false", q))
		}
	}
	if s.cfg.Logs == nil {
		return 0, false, fiber.NewError(fiber.StatusServiceUnavailable, "function logs are not available")
	}
	return limit, follow, nil
}

// logs answers the function's last records as NDJSON and, with ?follow=true, every new one as it
// arrives, until the client goes away or the server shuts down.
func (s *Server) logs(c *fiber.Ctx) error {
	name := c.Params("name")
	if err := checkFunctionName(name); err != nil {
		return err
	}
	limit, follow, err := s.logQuery(c)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Registry.Get(c.UserContext(), name); err != nil {
		return err
	}
	return s.serveLog(c, name, limit, follow)
}

// accessLog answers the access log of an API's stage as logs answers a function's: its last records
// and, with ?follow=true, each new one. Only a stage whose access log goes to a log group (group:)
// has one here; the others' lines are where their destination says.
func (s *Server) accessLog(c *fiber.Ctx) error {
	limit, follow, err := s.logQuery(c)
	if err != nil {
		return err
	}
	store, err := s.apiStore()
	if err != nil {
		return err
	}
	name, stage := c.Params("name"), c.Params("stage")
	if u, err := url.PathUnescape(stage); err == nil {
		stage = u // $default, written %24default by some clients
	}
	r, err := store.Get(c.UserContext(), name)
	if errors.Is(err, apistore.ErrNotFound) {
		return s.notFoundAPI(c, store, name)
	}
	if err != nil {
		return err
	}
	st, ok := r.API.Stages[stage]
	switch {
	case !ok:
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("API %s has no stage %s", name, stage))
	case st.AccessLog == nil:
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("stage %s of API %s has no access log: give it accessLog: {destination: group:NAME}", stage, name))
	}
	group, ok := strings.CutPrefix(st.AccessLog.Destination, spec.AccessLogGroupPrefix)
	if !ok {
		return fiber.NewError(fiber.StatusConflict, fmt.Sprintf("stage %s of API %s writes its access log to %s: read it there (only group: destinations are kept in the stack's log stream)",
			stage, name, st.AccessLog.Destination))
	}
	return s.serveLog(c, logstream.GroupSource(group), limit, follow)
}

// serveLog answers the last limit records of source (a function, or a log group's source) as
// NDJSON, then, with follow, every new one.
func (s *Server) serveLog(c *fiber.Ctx, name string, limit int, follow bool) error {
	var err error
	var recent []adminapi.LogRecord
	if limit > 0 {
		if recent, err = s.cfg.Logs.Recent(c.UserContext(), name, limit); err != nil {
			return err
		}
	}
	c.Set(fiber.HeaderContentType, "application/x-ndjson")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	if !follow {
		var buf strings.Builder
		for _, r := range recent {
			line, _ := json.Marshal(r)
			buf.Write(line)
			buf.WriteByte('\n')
		}
		return c.SendString(buf.String())
	}
	// The stream writer runs after this handler returns, when the request's strings are no longer
	// valid: keep a copy of the name.
	name = strings.Clone(name)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		s.follow(w, name, recent)
	})
	return nil
}

// follow writes recent, then every new record of function, to w, flushing after each, until a write
// fails (the client went away), the source stops, or the server shuts down.
func (s *Server) follow(w *bufio.Writer, function string, recent []adminapi.LogRecord) {
	write := func(r adminapi.LogRecord) {
		line, _ := json.Marshal(r)
		w.Write(line)
		w.WriteByte('\n')
	}
	for _, r := range recent {
		write(r)
	}
	if err := w.Flush(); err != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.done)
	records := make(chan adminapi.LogRecord, followBuffer)
	ended := make(chan error, 1)
	go func() {
		ended <- s.cfg.Logs.Follow(ctx, function, func(r adminapi.LogRecord) error {
			select {
			case records <- r:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var followErr error
	followEnded := false
	// Whatever ends the loop, the Follow goroutine is stopped and waited for.
	defer func() {
		cancel()
		if !followEnded {
			followErr = <-ended
		}
		if followErr != nil && !errors.Is(followErr, context.Canceled) {
			s.cfg.Logger.Warn("following function logs failed", "function", function, "err", followErr)
		}
	}()
	tick := time.NewTicker(s.keepAlive)
	defer tick.Stop()
	for {
		select {
		case r := <-records:
			write(r)
			// Write what else is waiting, then flush once.
			for more := true; more; {
				select {
				case r := <-records:
					write(r)
				default:
					more = false
				}
			}
		case <-tick.C:
			w.WriteByte('\n')
		case followErr = <-ended:
			followEnded = true
			for len(records) > 0 {
				write(<-records)
			}
			_ = w.Flush()
			return
		case <-ctx.Done():
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/jsopen"
)

// Audit log limits: the stream keeps the newer of the last AuditMaxEntries entries and those of the
// last AuditMaxAge.
const (
	AuditMaxEntries = 100000
	AuditMaxAge     = 400 * 24 * time.Hour
)

// Audit actions: what an [adminapi.AuditEntry] records.
const (
	ActionTokenCreate    = "token.create"
	ActionTokenDelete    = "token.delete"
	ActionFunctionDeploy = adminapi.ActionFunctionDeploy
	ActionFunctionDelete = adminapi.ActionFunctionDelete
	ActionAliasSet       = adminapi.ActionAliasSet
	ActionAliasDelete    = adminapi.ActionAliasDelete
)

// Audit is the audit log of one stack: a JetStream stream, so that every node of the stack records to
// and reads the same one.
type Audit struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string
}

// AuditStream returns the name of the stack's audit stream.
func AuditStream(stack string) string { return "gh_" + stack + "_audit" }

// AuditSubject returns the subject the stack's audit entries are published on.
func AuditSubject(stack string) string { return "gh." + stack + ".audit" }

// OpenAudit binds to the stack's audit stream, creating it when it does not exist.
func OpenAudit(ctx context.Context, js jetstream.JetStream, stack string) (*Audit, error) {
	name := AuditStream(stack)
	stream, err := jsopen.Stream(ctx, js, jetstream.StreamConfig{
		Name:        name,
		Description: "Gatehouse control-plane audit log of stack " + stack,
		Subjects:    []string{AuditSubject(stack)},
		Storage:     jetstream.FileStorage,
		MaxMsgs:     AuditMaxEntries,
		MaxAge:      AuditMaxAge,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("admin: the audit log: %w", err)
	}
	return &Audit{js: js, stream: stream, subject: AuditSubject(stack)}, nil
}

// Record appends e to the log, and returns once JetStream has stored it.
func (a *Audit) Record(ctx context.Context, e adminapi.AuditEntry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := a.js.Publish(ctx, a.subject, data); err != nil {
		return fmt.Errorf("admin: recording an audit entry: %w", err)
	}
	return nil
}

// List returns the last limit entries, oldest first. It reads only those: it starts at the stream's
// last sequence minus limit.
func (a *Audit) List(ctx context.Context, limit int) ([]adminapi.AuditEntry, error) {
	out := []adminapi.AuditEntry{}
	if limit <= 0 {
		return out, nil
	}
	info, err := a.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: reading the audit log: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 || last == 0 {
		return out, nil
	}
	start := first
	if last >= uint64(limit) && last-uint64(limit)+1 > start {
		start = last - uint64(limit) + 1
	}
	cons, err := a.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("admin: reading the audit log: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = a.stream.DeleteConsumer(ctx, cons.CachedInfo().Name) // else it expires when inactive
	}()
	for {
		batch, err := cons.Fetch(min(int(last-start+1), 1000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("admin: reading the audit log: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return nil, fmt.Errorf("admin: reading the audit log: %w", err)
			}
			var e adminapi.AuditEntry
			if err := json.Unmarshal(msg.Data(), &e); err == nil {
				out = append(out, e)
			}
			start = md.Sequence.Stream + 1
			if md.Sequence.Stream >= last {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("admin: reading the audit log: %w", err)
		}
		if n == 0 { // the rest was removed meanwhile (too old)
			return out, nil
		}
	}
}

// audit records a change made by the request's token; a failure is logged and does not undo the
// change.
func (s *Server) audit(c *fiber.Ctx, action, target, detail string) {
	if s.cfg.Audit == nil {
		return
	}
	token, _ := c.Locals(localTokenName).(string)
	e := adminapi.AuditEntry{Time: time.Now().UTC(), Token: token, Address: c.IP(), Action: action, Target: target, Detail: detail}
	if err := s.cfg.Audit.Record(c.UserContext(), e); err != nil {
		s.cfg.Logger.Error("audit entry not recorded", "action", action, "target", target, "token", token, "err", err)
	}
}

func (s *Server) listAudit(c *fiber.Ctx) error {
	limit, err := listLimit(c)
	if err != nil {
		return err
	}
	if s.cfg.Audit == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "the audit log is not available")
	}
	entries, err := s.cfg.Audit.List(c.UserContext(), limit)
	if err != nil {
		return err
	}
	return c.JSON(adminapi.AuditList{Entries: entries})
}

// Reconcile adds the entries the log lacks for versions deployed through the admin API: a deploy
// stores its version before it records its entry, and a node killed in between leaves a version
// nobody is recorded as deploying. Each version record says who deployed it and when, so the entry
// is made from it, marked as recorded late. It returns how many entries it added.
func (a *Audit) Reconcile(ctx context.Context, reg *functions.Registry) (int, error) {
	entries, err := a.List(ctx, AuditMaxEntries)
	if err != nil {
		return 0, err
	}
	recorded := map[string]bool{}
	for _, e := range entries {
		if e.Action == ActionFunctionDeploy {
			recorded[e.Target] = true
		}
	}
	fns, err := reg.List(ctx)
	if err != nil {
		return 0, err
	}
	added := 0
	for _, f := range fns {
		versions, err := reg.Versions(ctx, f.Name)
		if err != nil {
			return added, err
		}
		for _, v := range versions {
			target := v.Function + ":" + strconv.Itoa(v.Version)
			if v.DeployedBy == "" || recorded[target] {
				continue
			}
			if err := a.Record(ctx, adminapi.AuditEntry{Time: v.CreatedAt, Token: v.DeployedBy, Address: v.DeployedFrom,
				Action: ActionFunctionDeploy, Target: target,
				Detail: "sha256 " + v.ModuleSHA256 + ", created; recorded at start from the version record, as the deploy's own entry was lost"}); err != nil {
				return added, err
			}
			recorded[target] = true
			added++
		}
	}
	return added, nil
}

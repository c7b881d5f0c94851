package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// ClientConfig configures a bus connection.
type ClientConfig struct {
	// URL of the NATS server.
	URL string
	// Credentials to authenticate with.
	Credentials Credentials
	// Node names the node this connection belongs to (its workers' heartbeats carry it, and a
	// dispatcher prefers its own node's workers); "" for a single node.
	Node string
	// Stack whose subjects to use; default "default".
	Stack string
	// Name identifies the connection in the server's monitoring.
	Name string
	// OnClosed, when set, is called once when the connection is closed for good.
	OnClosed func()
	// MaxReconnects bounds reconnection attempts (100 ms apart) after the connection drops; 0 means
	// retry forever.
	MaxReconnects int
	// InProcess, when set, connects in-process to this embedded server instead of over TCP: no
	// loopback socket, and no system call or wake-up of the network poller per message. Only the
	// processes of the server's own node (its control and gateway connections) can.
	InProcess *Server
	// InboxPrefix, when set, replaces _INBOX as the prefix of the connection's inboxes (workers
	// use WorkerInboxPrefix).
	InboxPrefix string
	// Local, when set, joins the connection's dispatcher and workers to the others in the process
	// given the same Local: invocations between them are function calls (see Local).
	Local *Local
}

// Client is a connection to the bus.
type Client struct {
	nc    *nats.Conn
	subj  Subjects
	node  string
	local *Local
}

// Connect dials the bus.
func Connect(cfg ClientConfig) (*Client, error) {
	if cfg.Stack == "" {
		cfg.Stack = "default"
	}
	subj, err := NewSubjects(cfg.Stack)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	reconnects := cfg.MaxReconnects
	if reconnects == 0 {
		reconnects = -1 // forever
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(reconnects),
		nats.ReconnectWait(100 * time.Millisecond),
	}
	switch {
	case cfg.Credentials.File != "":
		opts = append(opts, nats.UserCredentials(cfg.Credentials.File))
	case cfg.Credentials.User != "":
		opts = append(opts, nats.UserInfo(cfg.Credentials.User, cfg.Credentials.Password))
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	if cfg.OnClosed != nil {
		opts = append(opts, nats.ClosedHandler(func(*nats.Conn) { cfg.OnClosed() }))
	}
	if cfg.InProcess != nil && cfg.InProcess.ns != nil {
		opts = append(opts, nats.InProcessServer(cfg.InProcess.ns))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connecting to %s: %w", cfg.URL, err)
	}
	return &Client{nc: nc, subj: subj, node: cfg.Node, local: cfg.Local}, nil
}

// Subjects returns the subjects of the client's stack.
func (c *Client) Subjects() Subjects { return c.subj }

// Conn returns the underlying NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Close closes the connection without draining.
func (c *Client) Close() { c.nc.Close() }

// Drain stops taking messages, lets handlers of those already received finish, flushes and closes.
func (c *Client) Drain(ctx context.Context) error {
	closed := make(chan struct{})
	c.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := c.nc.Drain(); err != nil {
		return fmt.Errorf("bus: draining: %w", err)
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		c.nc.Close()
		return ctx.Err()
	}
}

// Handler serves one invocation. An error becomes a coded error reply; its text must not contain
// request data.
type Handler func(ctx context.Context, inv Invocation) ([]byte, error)

func (c *Client) serve(m *nats.Msg, handle Handler, log *slog.Logger) {
	inv, err := c.decode(m)
	var out []byte
	if err == nil {
		ctx := context.Background()
		if !inv.Deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, inv.Deadline)
			defer cancel()
		}
		out, err = handle(ctx, inv)
	}
	reply := &nats.Msg{Subject: m.Reply, Data: out}
	if err != nil {
		reply.Data = nil
		reply.Header = nats.Header{
			HeaderError:       []string{string(CodeOf(err))},
			HeaderErrorDetail: []string{err.Error()},
		}
	}
	if m.Reply == "" {
		return
	}
	if err := c.nc.PublishMsg(reply); err != nil {
		log.Warn("reply to invocation failed", "request_id", inv.RequestID, "function", inv.Function, "err", err)
	}
}

func (c *Client) decode(m *nats.Msg) (Invocation, error) {
	fn, _ := c.subj.FunctionOf(m.Subject)
	inv := Invocation{Function: fn, Payload: m.Data}
	if v := m.Header.Get(HeaderEnvelope); v != EnvelopeVersion {
		return inv, fmt.Errorf("envelope version %q: %w", v, ErrBadEnvelope)
	}
	inv.RequestID = m.Header.Get(HeaderRequestID)
	inv.TraceParent = m.Header.Get(HeaderTraceParent)
	d, err := parseDeadline(m.Header.Get(HeaderDeadline))
	if err != nil {
		return inv, fmt.Errorf("deadline: %w", ErrBadEnvelope)
	}
	inv.Deadline = d
	if id := m.Header.Get(HeaderFunctionID); id != "" {
		n, err := strconv.Atoi(m.Header.Get(HeaderVersion))
		if err != nil || n < 0 {
			return inv, fmt.Errorf("function version: %w", ErrBadEnvelope)
		}
		inv.FunctionID, inv.Version = id, n
	}
	return inv, nil
}

// AnnounceReady tells the control process that the worker id is subscribed.
func (c *Client) AnnounceReady(id string) error {
	if err := c.nc.Publish(c.subj.WorkerReady(), []byte(id)); err != nil {
		return err
	}
	return c.nc.Flush()
}

package connections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"gatehouse.dev/gatehouse/internal/bus"
)

// Errors of the @connections operations, each answered with API Gateway's status.
var (
	// ErrGone means the connection does not exist: it closed, never opened, is still running
	// $connect, or its node is gone (410).
	ErrGone = errors.New("connection gone")
	// ErrPayloadTooLarge means a post is larger than the API's message limit (413).
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrLimitExceeded means the client is not reading: its send queue was full, and it was
	// disconnected (429).
	ErrLimitExceeded = errors.New("limit exceeded")
)

// Local is the side of @connections on the node that holds the sockets: the gateway.
type Local interface {
	Post(ctx context.Context, id string, data []byte) error
	Get(ctx context.Context, id string) (Record, error)
	Delete(ctx context.Context, id string) error
	// Broadcast posts data to each of ids and returns those that were gone.
	Broadcast(ctx context.Context, ids []string, data []byte) []string
}

// NodeAnswerTimeout bounds the wait for another node to answer an operation on one of its
// connections. A node that is gone answers nothing: its subscriptions vanish from the bus when its
// routes close (at once when its process dies, within seconds when its machine vanishes), and until
// then an operation would wait for its caller's deadline. Past this bound the node is taken for
// gone, and so is the connection (410). A broadcast, which may write to many sockets, has twice as
// long.
const NodeAnswerTimeout = 5 * time.Second

// Lister is a Local that can list its sockets' records, of one API or of all (""): a node's side of
// Router.List.
type Lister interface {
	List(api string) []Record
}

// headerAPI carries the API a list is of.
const headerAPI = "Gh-Api"

// headerConnection carries the connection id of an operation sent over the bus; headerConnections
// the comma-separated ids of a broadcast.
const (
	headerConnection  = "Gh-Connection-Id"
	headerConnections = "Gh-Connection-Ids"
)

// wire codes of the errors, in bus.HeaderError.
var errorCodes = map[string]error{"gone": ErrGone, "too-large": ErrPayloadTooLarge, "limit": ErrLimitExceeded}

// Router performs @connections operations on any connection of the stack: on this node's own
// sockets directly, on another node's over the bus. A connection id names its node, so no lookup is
// needed; a node that does not answer is gone, and so are its connections.
type Router struct {
	nc    *nats.Conn
	subj  bus.Subjects
	node  string
	local Local
	sub   *nats.Subscription
}

// NewRouter returns a router for a client of the bus. node and local are this node's id and sockets;
// a process that holds no sockets (a worker) passes "" and nil.
func NewRouter(c *bus.Client, node string, local Local) *Router {
	return &Router{nc: c.Conn(), subj: c.Subjects(), node: node, local: local}
}

// Serve answers the operations other nodes send for this node's connections, until Close.
func (r *Router) Serve() error {
	if r.local == nil {
		return errors.New("connections: a router without local connections serves nothing")
	}
	sub, err := r.nc.Subscribe(r.subj.NodeConnections(r.node), r.handle)
	if err != nil {
		return fmt.Errorf("connections: %w", err)
	}
	r.sub = sub
	return r.nc.Flush()
}

// Close stops serving.
func (r *Router) Close() {
	if r.sub != nil {
		r.sub.Unsubscribe()
	}
}

func (r *Router) handle(m *nats.Msg) {
	id := m.Header.Get(headerConnection)
	op := m.Subject[len(r.subj.NodeConnections(r.node))-1:]
	ctx := context.Background()
	var data []byte
	var err error
	switch op {
	case "post":
		err = r.local.Post(ctx, id, m.Data)
	case "get":
		var rec Record
		if rec, err = r.local.Get(ctx, id); err == nil {
			data, err = json.Marshal(rec)
		}
	case "delete":
		err = r.local.Delete(ctx, id)
	case "broadcast":
		ids := strings.Split(m.Header.Get(headerConnections), ",")
		data, err = json.Marshal(r.local.Broadcast(ctx, ids, m.Data))
	case "list":
		l, ok := r.local.(Lister)
		if !ok {
			err = errors.New("this node cannot list its connections")
			break
		}
		data, err = json.Marshal(l.List(m.Header.Get(headerAPI)))
	default:
		err = fmt.Errorf("unknown operation %q", op)
	}
	reply := nats.NewMsg(m.Reply)
	reply.Data = data
	if err != nil {
		code := "internal"
		for c, sentinel := range errorCodes {
			if errors.Is(err, sentinel) {
				code = c
			}
		}
		reply.Header.Set(bus.HeaderError, code)
		reply.Data = nil
	}
	m.RespondMsg(reply)
}

// Post sends data to the connection.
func (r *Router) Post(ctx context.Context, id string, data []byte) error {
	if r.isLocal(id) {
		return r.local.Post(ctx, id, data)
	}
	_, err := r.request(ctx, id, "post", data)
	return err
}

// Get describes the connection.
func (r *Router) Get(ctx context.Context, id string) (Record, error) {
	if r.isLocal(id) {
		return r.local.Get(ctx, id)
	}
	data, err := r.request(ctx, id, "get", nil)
	if err != nil {
		return Record{}, err
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return Record{}, fmt.Errorf("connections: get %s: %w", id, err)
	}
	return rec, nil
}

// Delete closes the connection.
func (r *Router) Delete(ctx context.Context, id string) error {
	if r.isLocal(id) {
		return r.local.Delete(ctx, id)
	}
	_, err := r.request(ctx, id, "delete", nil)
	return err
}

// Broadcast posts data to every connection in ids, with one message to each node that holds some
// of them, and returns the ids that were gone (malformed, closed, or on a node that is gone).
func (r *Router) Broadcast(ctx context.Context, ids []string, data []byte) ([]string, error) {
	byNode := map[string][]string{}
	var gone []string
	for _, id := range ids {
		node, ok := NodeOf(id)
		if !ok {
			gone = append(gone, id)
			continue
		}
		byNode[node] = append(byNode[node], id)
	}
	type result struct {
		gone []string
		err  error
	}
	results := make(chan result, len(byNode))
	for node, ids := range byNode {
		go func() {
			if r.local != nil && node == r.node {
				results <- result{gone: r.local.Broadcast(ctx, ids, data)}
				return
			}
			m := nats.NewMsg(r.subj.Connection(node, "broadcast"))
			m.Header.Set(headerConnections, strings.Join(ids, ","))
			m.Data = data
			octx, cancel := context.WithTimeout(ctx, 2*NodeAnswerTimeout)
			defer cancel()
			reply, err := r.nc.RequestMsgWithContext(octx, m)
			switch {
			case errors.Is(err, nats.ErrNoResponders), err != nil && ctx.Err() == nil && octx.Err() != nil:
				results <- result{gone: ids}
				return
			case err != nil:
				results <- result{err: fmt.Errorf("connections: broadcast to node %s: %w", node, err)}
				return
			}
			var g []string
			if code := reply.Header.Get(bus.HeaderError); code != "" {
				err = fmt.Errorf("connections: broadcast to node %s: the node answered %s", node, code)
			} else if err = json.Unmarshal(reply.Data, &g); err != nil {
				err = fmt.Errorf("connections: broadcast to node %s: %w", node, err)
			}
			results <- result{gone: g, err: err}
		}()
	}
	var errs []error
	for range byNode {
		res := <-results
		gone = append(gone, res.gone...)
		errs = append(errs, res.err)
	}
	return gone, errors.Join(errs...)
}

// List returns the open connections of this node and of each of nodes (the others of the stack, as
// the caller knows them), of one API or of all (""). A node that does not answer within
// NodeAnswerTimeout is left out, and named in the error.
func (r *Router) List(ctx context.Context, api string, nodes []string) ([]Record, error) {
	var out []Record
	if l, ok := r.local.(Lister); ok {
		out = append(out, l.List(api)...)
	}
	var errs []error
	for _, node := range nodes {
		if node == r.node {
			continue
		}
		m := nats.NewMsg(r.subj.Connection(node, "list"))
		m.Header.Set(headerAPI, api)
		octx, cancel := context.WithTimeout(ctx, NodeAnswerTimeout)
		reply, err := r.nc.RequestMsgWithContext(octx, m)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) {
			continue // gone, with its connections
		}
		var recs []Record
		if err == nil && reply.Header.Get(bus.HeaderError) != "" {
			err = fmt.Errorf("the node answered %s", reply.Header.Get(bus.HeaderError))
		}
		if err == nil {
			err = json.Unmarshal(reply.Data, &recs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("connections: listing node %s: %w", node, err))
			continue
		}
		out = append(out, recs...)
	}
	return out, errors.Join(errs...)
}

func (r *Router) isLocal(id string) bool {
	node, ok := NodeOf(id)
	return ok && r.local != nil && node == r.node
}

// request sends op for connection id to its node and returns the answer.
func (r *Router) request(ctx context.Context, id, op string, data []byte) ([]byte, error) {
	node, ok := NodeOf(id)
	if !ok {
		return nil, ErrGone
	}
	m := nats.NewMsg(r.subj.Connection(node, op))
	m.Header.Set(headerConnection, id)
	m.Data = data
	octx, cancel := context.WithTimeout(ctx, NodeAnswerTimeout)
	defer cancel()
	reply, err := r.nc.RequestMsgWithContext(octx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, ErrGone // no node by that id is up
	case err != nil && ctx.Err() == nil && octx.Err() != nil:
		return nil, ErrGone // the node did not answer in time: taken for gone
	case err != nil:
		return nil, fmt.Errorf("connections: %s %s: %w", op, id, err)
	}
	if code := reply.Header.Get(bus.HeaderError); code != "" {
		if sentinel, ok := errorCodes[code]; ok {
			return nil, sentinel
		}
		return nil, fmt.Errorf("connections: %s %s: the node answered %s", op, id, code)
	}
	return reply.Data, nil
}

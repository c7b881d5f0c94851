package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	fws "github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/internal/bus"
)

// WebSocket defaults: API Gateway's limits.
const (
	DefaultMaxMessageBytes       = 128 << 10
	DefaultWSIdleTimeout         = 10 * time.Minute
	DefaultMaxConnectionDuration = 2 * time.Hour
	DefaultSendQueue             = 256
	DefaultWSIntegrationTimeout  = 29 * time.Second
	// pingInterval is how often the gateway pings an open socket, so that a client that vanished is
	// noticed and intermediaries keep the connection open.
	pingInterval = 30 * time.Second
	// writeTimeout bounds one write to a client; a client that takes longer is disconnected.
	writeTimeout = 10 * time.Second
	// inboundQueue bounds the messages of one connection received but not yet handled; the reader
	// waits (and the client with it) when it is full.
	inboundQueue = 16
)

// WebSocketSettings are the settings of a WebSocket API.
type WebSocketSettings struct {
	// RouteSelectionExpression picks a message's route, e.g. "$request.body.action".
	RouteSelectionExpression string
	// MaxMessageBytes bounds a message from a client (larger: the socket is closed with 1009) and a
	// post to a connection (larger: 413); default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// IdleTimeout closes a connection without messages for that long; default DefaultWSIdleTimeout.
	IdleTimeout time.Duration
	// MaxDuration closes a connection open for that long; default DefaultMaxConnectionDuration.
	MaxDuration time.Duration
	// SendQueue bounds the messages waiting to be written to one client; a client that lets it
	// fill up is disconnected. Default DefaultSendQueue.
	SendQueue int
}

func (w *WebSocketSettings) defaults() {
	if w.MaxMessageBytes <= 0 {
		w.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if w.IdleTimeout <= 0 {
		w.IdleTimeout = DefaultWSIdleTimeout
	}
	if w.MaxDuration <= 0 {
		w.MaxDuration = DefaultMaxConnectionDuration
	}
	if w.SendQueue <= 0 {
		w.SendQueue = DefaultSendQueue
	}
	if w.RouteSelectionExpression == "" {
		w.RouteSelectionExpression = "$request.body.action"
	}
}

// wsAPI is the compiled WebSocket side of an API.
type wsAPI struct {
	settings WebSocketSettings
	selector *RouteSelector
	keys     map[string]bool
	routes   map[string]int // route key → index in Routes
}

func compileWebSocket(a *compiledAPI) error {
	ws := *a.WebSocket
	ws.defaults()
	sel, err := NewRouteSelector(ws.RouteSelectionExpression)
	if err != nil {
		return fmt.Errorf("gateway: API %s: %w", a.ID, err)
	}
	w := &wsAPI{settings: ws, selector: sel, keys: map[string]bool{}, routes: map[string]int{}}
	for i, r := range a.Routes {
		if _, dup := w.routes[r.Key]; dup {
			return fmt.Errorf("gateway: API %s: route %q defined twice", a.ID, r.Key)
		}
		w.routes[r.Key] = i
		if r.Key != "$connect" && r.Key != "$disconnect" {
			w.keys[r.Key] = true
		}
	}
	a.ws = w
	return nil
}

// Connection errors of the @connections API, each with API Gateway's status.
var (
	// ErrConnectionGone is a connection that does not exist (any more, or yet).
	ErrConnectionGone = connections.ErrGone
)

// wsHub holds this node's open sockets.
type wsHub struct {
	mu     sync.Mutex
	conns  map[string]*wsConn
	closed bool
	wg     sync.WaitGroup
}

func (h *wsHub) add(c *wsConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.conns == nil {
		h.conns = map[string]*wsConn{}
	}
	h.conns[c.id] = c
	return true
}

func (h *wsHub) remove(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.id] == c {
		delete(h.conns, c.id)
	}
}

func (h *wsHub) get(id string) *wsConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[id]
}

// closeAll closes every socket with code and stops taking new ones.
func (h *wsHub) closeAll(code int, reason string) {
	h.mu.Lock()
	h.closed = true
	conns := make([]*wsConn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.close(code, reason)
	}
}

func (h *wsHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// wsConn is one open socket.
type wsConn struct {
	id          string
	api         *compiledAPI
	stage       *Stage
	domain      string
	sourceIP    string
	userAgent   string
	connectedAt time.Time
	authorizer  map[string]any

	conn    *websocket.Conn
	send    chan outbound
	closing chan struct{}
	once    sync.Once
	// closeCode and closeReason are what the gateway closed the socket with (0 when the client
	// closed it first); set before closing is closed.
	closeCode   int
	closeReason string
	lastActive  atomic.Int64
}

type outbound struct {
	data   []byte
	binary bool
}

// isClosing reports whether the socket is closing: for @connections, it is gone.
func (c *wsConn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// close asks the writer to close the socket with code and reason; the first call wins.
func (c *wsConn) close(code int, reason string) {
	c.once.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.closing)
	})
}

// enqueue queues a message for the client. A client whose queue is full is disconnected.
func (c *wsConn) enqueue(data []byte) error {
	return c.enqueueFrame(outbound{data: data, binary: !utf8.Valid(data)})
}

// enqueueFrame queues a message whose kind (text or binary) is decided.
func (c *wsConn) enqueueFrame(m outbound) error {
	select {
	case <-c.closing:
		return ErrConnectionGone
	default:
	}
	select {
	case c.send <- m:
		return nil
	default:
		c.close(websocket.ClosePolicyViolation, "client too slow: its send queue is full")
		return connections.ErrLimitExceeded
	}
}

// upgrade handles a request to a WebSocket API's stage root: it runs $connect, then upgrades.
func (s *Server) upgrade(c *fiber.Ctx, api *compiledAPI, stage *Stage, l *labels, now time.Time) error {
	if !fws.IsWebSocketUpgrade(c) {
		return fiber.NewError(fiber.StatusUpgradeRequired, "Upgrade Required")
	}
	l.route = "$connect"
	requestID, _ := c.Locals(localRequestID).(string)
	ws := api.ws
	conn := &wsConn{
		id:          connections.NewID(s.cfg.NodeID),
		api:         api,
		stage:       stage,
		domain:      hostOnly(string(c.Request().Host())),
		sourceIP:    c.IP(),
		userAgent:   c.Get(fiber.HeaderUserAgent),
		connectedAt: now,
		send:        make(chan outbound, ws.settings.SendQueue),
		closing:     make(chan struct{}),
	}
	if idx, ok := ws.routes["$connect"]; ok {
		// Authorization and API keys apply to $connect only; what an authorizer finds goes with
		// every later event of the connection.
		route := api.Routes[idx]
		authz, err := s.authorize(c, api, stage, route, nil, now)
		if err != nil {
			return err
		}
		if authz != nil {
			switch {
			case authz.Lambda != nil:
				conn.authorizer = authz.Lambda
			case authz.IAM != nil:
				conn.authorizer = map[string]any{"accessKey": authz.IAM.AccessKey}
			}
		}
		if route.APIKeyRequired {
			if err := s.checkAPIKey(c, now); err != nil {
				return err
			}
		}
		headers := map[string][]string{}
		c.Request().Header.VisitAll(func(k, v []byte) {
			headers[string(k)] = append(headers[string(k)], string(v))
		})
		query := map[string][]string{}
		c.Request().URI().QueryArgs().VisitAll(func(k, v []byte) {
			query[string(k)] = append(query[string(k)], string(v))
		})
		out, err := s.invokeWS(conn, idx, WSEventContext{
			EventType: "CONNECT", RouteKey: "$connect", RequestID: requestID, Time: now, Headers: headers, Query: query,
		})
		if err != nil {
			return err
		}
		status, hdrs, body, err := ParseWSResponse(out)
		if err != nil {
			return fmt.Errorf("$connect of %s: %w", api.ID, err)
		}
		if status < 200 || status > 299 {
			// The function refused the connection: the client sees its status (and body).
			c.Status(status)
			return c.Send(body)
		}
		for k, v := range hdrs {
			c.Set(k, v)
		}
	}
	if s.cfg.Connections != nil {
		var authz json.RawMessage
		if conn.authorizer != nil {
			authz, _ = json.Marshal(conn.authorizer)
		}
		if err := s.cfg.Connections.Put(connections.Record{ID: conn.id, API: api.ID, Stage: stage.Name, ConnectedAt: now,
			LastActiveAt: now, SourceIP: conn.sourceIP, UserAgent: conn.userAgent, Authorizer: authz}); err != nil {
			return fmt.Errorf("storing connection: %w", err)
		}
	}
	if !s.hub.add(conn) {
		s.forget(conn)
		return errServiceUnavailable
	}
	s.hub.wg.Add(1)
	s.metrics.wsConnections(1)
	c.Locals(localWSConn, conn)
	if err := s.wsUpgrade(c); err != nil {
		// Not upgraded after all: the connection never opened.
		s.hub.remove(conn)
		s.forget(conn)
		s.metrics.wsConnections(-1)
		s.hub.wg.Done()
		return err
	}
	return nil
}

// localWSConn is where upgrade hands the connection to the upgraded handler (a string key: the
// WebSocket library copies only those).
const localWSConn = "gatehouse.wsconn"

// newUpgrader returns the handler that upgrades a request whose connection upgrade prepared. One
// serves every connection, and idle sockets share its write buffers.
func (s *Server) newUpgrader() fiber.Handler {
	return fws.New(func(fc *fws.Conn) {
		conn, _ := fc.Locals(localWSConn).(*wsConn)
		s.runConn(conn, fc.Conn)
	}, fws.Config{
		ReadBufferSize:  4 << 10,
		WriteBufferSize: 4 << 10,
		WriteBufferPool: &sync.Pool{},
		RecoverHandler: func(fc *fws.Conn) {
			if r := recover(); r != nil {
				id := ""
				if conn, ok := fc.Locals(localWSConn).(*wsConn); ok {
					id = conn.id
				}
				s.log.Error("websocket connection panicked", "connection_id", id, "panic", fmt.Sprint(r))
			}
		},
	})
}

// forget deletes a connection's record.
func (s *Server) forget(conn *wsConn) {
	if s.cfg.Connections != nil {
		if err := s.cfg.Connections.Delete(conn.id); err != nil && !errors.Is(err, connections.ErrNotFound) {
			s.log.Warn("deleting connection record", "connection_id", conn.id, "err", err)
		}
	}
}

// runConn serves an upgraded socket until it closes, then runs $disconnect.
func (s *Server) runConn(c *wsConn, conn *websocket.Conn) {
	defer s.hub.wg.Done()
	defer s.metrics.wsConnections(-1)
	c.conn = conn
	c.lastActive.Store(c.connectedAt.UnixNano())
	settings := c.api.ws.settings
	conn.SetReadLimit(int64(settings.MaxMessageBytes))

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop(c, settings)
	}()
	inbound := make(chan inboundMessage, inboundQueue)
	handlerDone := make(chan struct{})
	go func() {
		defer close(handlerDone)
		for m := range inbound {
			s.handleMessage(c, m)
		}
	}()

	code, reason := websocket.CloseNoStatusReceived, ""
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce):
				code, reason = ce.Code, ce.Text
			case errors.Is(err, websocket.ErrReadLimit):
				code, reason = websocket.CloseMessageTooBig, "Message too big"
				c.close(code, reason)
			default:
				code = websocket.CloseAbnormalClosure
			}
			if code == websocket.CloseAbnormalClosure {
				reason = ""
			}
			break
		}
		c.lastActive.Store(time.Now().UnixNano())
		select {
		case inbound <- inboundMessage{data: data, binary: typ == websocket.BinaryMessage, at: time.Now()}:
		case <-c.closing:
		}
	}
	close(inbound)
	// Whoever closed, the writer finishes the close handshake (or gives up) and the socket ends.
	if c.closeCode == 0 {
		c.close(code, reason)
	}
	<-writerDone
	<-handlerDone
	conn.Close()
	s.hub.remove(c)
	s.forget(c)
	if c.closeCode != 0 {
		code, reason = c.closeCode, c.closeReason
	}
	if idx, ok := c.api.ws.routes["$disconnect"]; ok {
		if _, err := s.invokeWS(c, idx, WSEventContext{EventType: "DISCONNECT", RouteKey: "$disconnect", RequestID: NewRequestID(),
			Time: time.Now(), StatusCode: code, Reason: reason}); err != nil {
			s.log.Warn("$disconnect failed", "api", c.api.ID, "connection_id", c.id, "err", err)
		}
	}
}

type inboundMessage struct {
	data   []byte
	binary bool
	at     time.Time
}

// writeLoop owns writes to the socket: queued messages, pings, and the close handshake. It also
// enforces the idle timeout and the maximum duration.
func (s *Server) writeLoop(c *wsConn, settings WebSocketSettings) {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	maxTimer := time.NewTimer(settings.MaxDuration)
	defer maxTimer.Stop()
	idle := time.NewTimer(settings.IdleTimeout)
	defer idle.Stop()
	for {
		select {
		case m := <-c.send:
			typ := websocket.TextMessage
			if m.binary {
				typ = websocket.BinaryMessage
			}
			c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := c.conn.WriteMessage(typ, m.data); err != nil {
				c.close(websocket.CloseAbnormalClosure, "")
				c.conn.SetReadDeadline(time.Now()) // ends the reader
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				c.close(websocket.CloseAbnormalClosure, "")
				c.conn.SetReadDeadline(time.Now())
				return
			}
		case <-idle.C:
			last := time.Unix(0, c.lastActive.Load())
			if wait := settings.IdleTimeout - time.Since(last); wait > 0 {
				idle.Reset(wait)
				continue
			}
			c.close(websocket.CloseGoingAway, "Idle timeout")
		case <-maxTimer.C:
			c.close(websocket.CloseGoingAway, "Maximum connection duration")
		case <-c.closing:
			// Send the close frame, then give the client a moment to answer before the socket is
			// torn down; the reader sees its close frame (or the socket closing) and ends.
			msg := websocket.FormatCloseMessage(c.closeCode, c.closeReason)
			if c.closeCode == websocket.CloseAbnormalClosure || c.closeCode == websocket.CloseNoStatusReceived {
				msg = nil
			}
			if msg != nil {
				c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			}
			// A hijacked connection closes only when the handler returns: a read deadline ends the
			// reader of a client that never answers.
			c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			return
		}
	}
}

// handleMessage routes one message and runs its function.
func (s *Server) handleMessage(c *wsConn, m inboundMessage) {
	requestID := NewRequestID()
	key, ok := c.api.ws.selector.Select(m.data, c.api.ws.keys)
	if !ok {
		c.enqueue(WSErrorFrame("Forbidden", c.id, requestID))
		return
	}
	idx := c.api.ws.routes[key]
	out, err := s.invokeWS(c, idx, WSEventContext{EventType: "MESSAGE", RouteKey: key, RequestID: requestID, MessageID: NewRequestID(),
		Time: m.at, Body: m.data, Binary: m.binary})
	if err != nil {
		s.log.Warn("websocket message failed", "api", c.api.ID, "route", key, "connection_id", c.id, "request_id", requestID, "err", err)
		c.enqueue(WSErrorFrame("Internal server error", c.id, requestID))
		return
	}
	if !c.api.Routes[idx].RouteResponse {
		return
	}
	_, _, body, err := ParseWSResponse(out)
	if err != nil {
		c.enqueue(WSErrorFrame("Internal server error", c.id, requestID))
		return
	}
	if len(body) > 0 {
		c.enqueue(body)
	}
}

// invokeWS runs route idx of c's API with an event built from ev and the connection's context.
func (s *Server) invokeWS(c *wsConn, idx int, ev WSEventContext) ([]byte, error) {
	route, tgt := c.api.Routes[idx], c.api.targets[idx]
	ev.APIID, ev.Stage, ev.DomainName = c.api.ID, c.stage.Name, c.domain
	ev.ConnectionID, ev.ConnectedAt = c.id, c.connectedAt
	ev.SourceIP, ev.UserAgent = c.sourceIP, c.userAgent
	ev.StageVariables, ev.Authorizer = c.stage.Variables, c.authorizer
	event, err := BuildWSEvent(ev)
	if err != nil {
		return nil, fmt.Errorf("building %s event: %w", ev.EventType, err)
	}
	inv := bus.Invocation{Function: tgt.function, RequestID: ev.RequestID, Deadline: time.Now().Add(route.Timeout), Payload: event}
	if s.cfg.Resolver != nil {
		t, err := s.cfg.Resolver.Resolve(tgt.function, tgt.qualifier)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", route.Key, err)
		}
		inv.FunctionID, inv.Version, inv.Timeout, inv.MaxConcurrency = t.FunctionID, t.Version, t.Timeout, t.MaxConcurrency
	}
	ctx, cancel := context.WithTimeout(context.Background(), route.Timeout)
	defer cancel()
	start := time.Now()
	out, err := s.inv.Invoke(ctx, inv)
	s.metrics.observeIntegration(c.api.ID, route.Key, time.Since(start))
	return out, err
}

// PostToConnection sends data to one of this node's sockets (the local side of @connections).
func (s *Server) PostToConnection(_ context.Context, id string, data []byte) error {
	return s.post(id, outbound{data: data, binary: !utf8.Valid(data)})
}

func (s *Server) post(id string, m outbound) error {
	c := s.hub.get(id)
	if c == nil {
		return ErrConnectionGone
	}
	if len(m.data) > c.api.ws.settings.MaxMessageBytes {
		return connections.ErrPayloadTooLarge
	}
	return c.enqueueFrame(m)
}

// BroadcastToConnections posts data to each of this node's sockets in ids and returns the ids that
// were gone (or whose client could not keep up, and was disconnected).
func (s *Server) BroadcastToConnections(ctx context.Context, ids []string, data []byte) []string {
	var gone []string
	m := outbound{data: data, binary: !utf8.Valid(data)} // decided once for every recipient
	for _, id := range ids {
		if err := s.post(id, m); err != nil {
			gone = append(gone, id)
		}
	}
	return gone
}

// GetConnection returns one of this node's connections.
func (s *Server) GetConnection(_ context.Context, id string) (connections.Record, error) {
	c := s.hub.get(id)
	if c == nil || c.isClosing() {
		return connections.Record{}, ErrConnectionGone
	}
	return connections.Record{ID: c.id, API: c.api.ID, Stage: c.stage.Name, ConnectedAt: c.connectedAt,
		LastActiveAt: time.Unix(0, c.lastActive.Load()), SourceIP: c.sourceIP, UserAgent: c.userAgent}, nil
}

// DeleteConnection closes one of this node's sockets; $disconnect follows.
func (s *Server) DeleteConnection(_ context.Context, id string) error {
	c := s.hub.get(id)
	if c == nil || c.isClosing() {
		return ErrConnectionGone
	}
	c.close(websocket.CloseNormalClosure, "")
	return nil
}

// ListConnections lists this node's open connections, of one API or of all ("").
func (s *Server) ListConnections(api string) []connections.Record {
	s.hub.mu.Lock()
	ids := make([]string, 0, len(s.hub.conns))
	for id, c := range s.hub.conns {
		if api == "" || c.api.ID == api {
			ids = append(ids, id)
		}
	}
	s.hub.mu.Unlock()
	out := make([]connections.Record, 0, len(ids))
	for _, id := range ids {
		if r, err := s.GetConnection(context.Background(), id); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// isManagementPath reports whether rest (the path below a stage) is an @connections path, and the
// connection id in it.
func isManagementPath(rest string) (string, bool) {
	id, ok := strings.CutPrefix(rest, "/@connections/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

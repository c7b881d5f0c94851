package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/tracing"
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
	// sweepInterval is how often the idle timeout and the maximum duration of every socket are
	// checked, and pings sent when due.
	sweepInterval = time.Second
)

// WebSocketSettings are the settings of a WebSocket API.
type WebSocketSettings struct {
	// RouteSelectionExpression picks a message's route, e.g. "$request.body.action".
	RouteSelectionExpression string
	// MaxMessageBytes bounds a message from a client (larger: the socket is closed with 1009) and a
	// post to a connection (larger: 413); default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxFrameBytes bounds one frame from a client (larger: the socket is closed with 1009, reason
	// "Frame too big"); 0 leaves frames bounded by MaxMessageBytes only.
	MaxFrameBytes int
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

// wsConn is one open socket. An idle socket has one goroutine, its reader; a writer runs while there
// is something to write to it (messages, a ping, the close handshake), and a handler while messages
// from its client wait to be handled, each one at a time so that order is kept. A message for an
// idle socket is written at once by whoever sends it, without a writer (see send in wswire.go).
type wsConn struct {
	id  string
	srv *Server
	// bound is the API and stage the socket belongs to: replaced when the API's definition changes,
	// so each message is routed by the definition current when it is handled.
	bound     atomic.Pointer[wsBinding]
	domain    string
	sourceIP  string
	userAgent string
	// connectedAt is when the client connected (UnixNano).
	connectedAt int64
	authorizer  map[string]any
	lastActive  atomic.Int64
	// lastPing is when the sweeper last pinged the socket (UnixNano); only the sweeper uses it.
	lastPing int64

	mu sync.Mutex
	// cond is signalled when a queue shrinks, the writer or the handler stops, the wire is released,
	// or the socket closes.
	cond sync.Cond
	// conn is the socket, set once it is upgraded; nothing is written before. The library reads and
	// writes control frames through wsWire; data frames are written to sock directly.
	conn *websocket.Conn
	// sock is the connection beneath the WebSocket library (the TCP connection, or limitFrames of it).
	sock net.Conn
	// wireDeadline is the write deadline the library last asked for (UnixNano, 0 for none); it is
	// applied when the library writes, under the wire.
	wireDeadline int64
	// out holds the frames waiting to be written (at most SendQueue); in the messages received and
	// not yet handled (at most inboundQueue).
	out []outbound
	in  []inboundMessage
	// writing tells whether the socket's frames have an owner: the writer, or a sender writing one
	// frame to an idle socket. handling tells whether the handler runs; pingDue asks the writer for
	// a ping.
	writing, handling, pingDue bool
	// wireBusy is set while someone writes bytes to the socket, and while a frame is partly written
	// (its rest is first in out): nothing else may be written to the socket then.
	wireBusy bool
	// closing is set when the socket starts closing: for @connections, it is gone. closeDone is set
	// once the writer has sent the close frame (or given up); nothing is written after. closeSent is
	// set when the library has written a close frame (the writer's, or the reader's answer to the
	// client's close or to a protocol error): no data frame follows it.
	closing              atomic.Bool
	closeDone, closeSent bool
	// closeCode and closeReason are what the gateway closed the socket with (0 when the client
	// closed it first); set when closing is.
	closeCode   int32
	closeReason string
}

// outbound is a frame waiting to be written: a whole frame (header and payload, see wsFrame), or,
// when partial, the rest of one whose start is already on the wire.
type outbound struct {
	data    []byte
	partial bool
}

// isClosing reports whether the socket is closing: for @connections, it is gone.
func (c *wsConn) isClosing() bool { return c.closing.Load() }

// wsBinding is a socket's API and stage, from one definition of the API.
type wsBinding struct {
	api   *compiledAPI
	stage *Stage
}

// def returns the API and stage the socket belongs to now.
func (c *wsConn) def() *wsBinding { return c.bound.Load() }

// close has the writer close the socket with code and reason; the first call wins.
func (c *wsConn) close(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(code, reason)
}

func (c *wsConn) closeLocked(code int, reason string) {
	if c.closing.Load() {
		return
	}
	c.closeCode, c.closeReason = int32(code), reason
	c.closing.Store(true)
	c.cond.Broadcast()
	c.startWriter()
}

// ping has the writer ping the client.
func (c *wsConn) ping() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing.Load() {
		return
	}
	c.pingDue = true
	c.startWriter()
}

// startWriter starts the writer unless it runs, the socket is not upgraded yet, or it is closed.
// c.mu is held.
func (c *wsConn) startWriter() {
	if c.writing || c.closeDone || c.conn == nil {
		return
	}
	c.writing = true
	go c.writeLoop()
}

// enqueue sends a message to the client: a text frame when data is UTF-8, binary otherwise. A client
// whose queue is full is disconnected.
func (c *wsConn) enqueue(data []byte) error {
	return c.send(wsFrame(data, !utf8.Valid(data)))
}

// queueLocked queues a frame for the writer, and starts it. A client whose queue is full is
// disconnected. c.mu is held.
func (c *wsConn) queueLocked(frame []byte) error {
	if c.closing.Load() {
		return ErrConnectionGone
	}
	if len(c.out) >= c.def().api.ws.settings.SendQueue {
		c.closeLocked(websocket.ClosePolicyViolation, "client too slow: its send queue is full")
		return connections.ErrLimitExceeded
	}
	c.out = append(c.out, outbound{data: frame})
	c.startWriter()
	return nil
}

// upgrade handles a request to a WebSocket API's stage root: it runs $connect, then upgrades.
func (s *Server) upgrade(c *fiber.Ctx, api *compiledAPI, stage *Stage, l *labels, now time.Time) error {
	if !websocket.FastHTTPIsWebSocketUpgrade(c.Context()) {
		return fiber.NewError(fiber.StatusUpgradeRequired, "Upgrade Required")
	}
	l.route = "$connect"
	requestID, _ := c.Locals(localRequestID).(string)
	ws := api.ws
	// What the connection keeps from its request is copied: the request's buffers go back to the
	// HTTP server, for other requests, once the socket is taken over.
	conn := &wsConn{
		id:          connections.NewID(s.cfg.NodeID),
		domain:      hostOnly(string(c.Request().Host())),
		sourceIP:    strings.Clone(c.IP()),
		userAgent:   strings.Clone(c.Get(fiber.HeaderUserAgent)),
		connectedAt: now.UnixNano(),
		srv:         s,
		lastPing:    now.UnixNano(),
	}
	conn.cond.L = &conn.mu
	conn.lastActive.Store(now.UnixNano())
	bound := &wsBinding{api: api, stage: stage}
	conn.bound.Store(bound)
	if idx, ok := ws.routes["$connect"]; ok {
		// Authorization and API keys apply to $connect only; what an authorizer finds goes with
		// every later event of the connection.
		route := api.Routes[idx]
		authz, err := s.authorize(c, api, stage, route, -1, nil, "", now)
		if err != nil {
			return err
		}
		if authz != nil {
			switch {
			case authz.Lambda != nil:
				conn.authorizer = authz.Lambda
			case authz.IAM != nil:
				conn.authorizer = map[string]any{"accessKey": strings.Clone(authz.IAM.AccessKey)}
			}
		}
		if route.APIKeyRequired {
			if err := s.checkAPIKey(c, now); err != nil {
				return err
			}
		}
		headers := collectValues(c.Request().Header.VisitAll)
		query := collectValues(c.Request().URI().QueryArgs().VisitAll)
		out, err := s.invokeWS(conn, bound, idx, WSEventContext{
			EventType: "CONNECT", RouteKey: "$connect", RequestID: requestID, Time: now, Headers: headers, Query: query,
		})
		if err != nil {
			return err
		}
		status, hdrs, body, err := ParseWSResponse(out)
		if err != nil {
			s.metrics.failed(api.targets[idx].function, ErrMalformedResponse)
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
	// The API's definition may have changed while $connect ran: the socket follows it from here.
	if set := s.apis.Load(); !slices.Contains(set.compiled, api) {
		s.rebind(set.compiled, conn)
	}
	s.hub.wg.Add(1)
	s.metrics.wsConnections(1)
	if err := s.hijackWS(c, conn); err != nil {
		// Not upgraded after all: the connection never opened.
		s.abandon(conn)
		return err
	}
	return nil
}

// collectValues returns the names and values visitAll visits (a request's headers, or its query's
// arguments) as a map from each name to its values in order, nil when there are none. The names and
// values are copied into one string, and the values' slices share one array: a few allocations
// per handshake instead of three per header.
func collectValues(visitAll func(func(k, v []byte))) map[string][]string {
	n, size := 0, 0
	visitAll(func(k, v []byte) {
		n++
		size += len(k) + len(v)
	})
	if n == 0 {
		return nil
	}
	var b strings.Builder
	b.Grow(size)
	visitAll(func(k, v []byte) {
		b.Write(k)
		b.Write(v)
	})
	all := b.String()
	values := make([]string, n)
	m := make(map[string][]string, n)
	i, off := 0, 0
	visitAll(func(k, v []byte) {
		if i == n || off+len(k)+len(v) > len(all) {
			return // cannot happen: visitAll visits the same values each time
		}
		name := all[off : off+len(k)]
		off += len(k)
		values[i] = all[off : off+len(v)]
		off += len(v)
		if prev, ok := m[name]; ok {
			m[name] = append(prev, values[i]) // a repeated name: its values are copied once
		} else {
			m[name] = values[i : i+1 : i+1]
		}
		i++
	})
	return m
}

// abandon undoes what upgrade did for a connection that never opened.
func (s *Server) abandon(conn *wsConn) {
	s.hub.remove(conn)
	s.forget(conn)
	s.metrics.wsConnections(-1)
	s.hub.wg.Done()
}

// wsReadBufferSize is the read buffer each socket keeps for its lifetime: enough for the frames of
// typical messages in one read; a larger message is read straight into the message.
const wsReadBufferSize = 1 << 10

// newUpgrader returns the upgrader of every socket. The gateway writes data frames itself
// (wswire.go); the pool keeps the library from giving each socket a write buffer of its own.
func newUpgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  wsReadBufferSize,
		WriteBufferSize: 4 << 10,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
}

// hijackWS answers a WebSocket handshake that upgrade accepted: it takes the TCP connection over
// from the HTTP server, which then lets go of the request and its buffers, and serves the socket on
// it. A malformed handshake is refused with 426.
func (s *Server) hijackWS(c *fiber.Ctx, conn *wsConn) error {
	fc := c.Context()
	if !fc.IsGet() || !websocket.FastHTTPIsWebSocketUpgrade(fc) || !wsVersion13(fc.Request.Header.Peek("Sec-Websocket-Version")) ||
		!wsValidKey(fc.Request.Header.Peek("Sec-Websocket-Key")) {
		return fiber.ErrUpgradeRequired
	}
	// The upgrader reads only the handshake's own headers (it negotiates no compression, checks no
	// origin and takes the subprotocol from the answer), so only those are copied.
	req := &http.Request{Method: http.MethodGet, Header: make(http.Header, len(wsUpgradeHeaders))}
	fc.Request.Header.VisitAll(func(k, v []byte) {
		for _, name := range wsUpgradeHeaders {
			if len(k) == len(name) && bytes.EqualFold(k, []byte(name)) {
				req.Header[name] = append(req.Header[name], string(v))
			}
		}
	})
	// The headers set so far ($connect's, the request id) go on the handshake's answer, except
	// those the handshake sets itself.
	answer := http.Header{}
	fc.Response.Header.VisitAll(func(k, v []byte) {
		switch http.CanonicalHeaderKey(string(k)) {
		case "Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "Server", "Date",
			"Sec-Websocket-Accept", "Sec-Websocket-Extensions":
			return
		}
		answer.Add(string(k), string(v))
	})
	// The upgrader writes the answer itself; the status is for the access log and metrics.
	fc.SetStatusCode(fiber.StatusSwitchingProtocols)
	fc.HijackSetNoResponse(true)
	fc.Hijack(func(nc net.Conn) { s.openWS(conn, nc, req, answer) })
	return nil
}

// openWS completes the handshake on the hijacked connection nc and serves the socket.
func (s *Server) openWS(conn *wsConn, nc net.Conn, req *http.Request, answer http.Header) {
	raw := nc
	if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	hijacked := raw != nc
	// From here on the hub keeps the connection, and writes to the socket itself (tryWrite).
	raw = s.conns.Untrack(raw)
	if hijacked {
		// The HTTP server's reader may hold bytes the client sent after its request: a client must
		// wait for the handshake's answer, so one that did not is refused. The read deadline in the
		// past makes the read return at once with what the reader holds, if anything.
		raw.SetReadDeadline(time.Unix(1, 0))
		var b [1]byte
		if n, _ := nc.Read(b[:]); n > 0 {
			raw.Close()
			s.abandon(conn)
			return
		}
	}
	// The socket reads through limitFrames when frames have a limit of their own, below the
	// message limit (a frame over the message limit is over that limit too).
	var sock net.Conn = raw
	if st := conn.def().api.ws.settings; st.MaxFrameBytes < st.MaxMessageBytes {
		sock = limitFrames(raw, st.MaxFrameBytes)
	}
	// The library reads, and writes its handshake and control frames, through wsWire, which keeps
	// them from mixing with the data frames the gateway writes to sock.
	conn.sock = sock
	wc, err := s.wsUpgrader.Upgrade(hijackedWriter{wsWire{conn}}, req, answer)
	if err != nil {
		raw.Close()
		s.abandon(conn)
		return
	}
	if raw == nc {
		s.runConn(conn, wc)
		return
	}
	// The socket has its own goroutine; the HTTP server's ends and releases the request.
	go s.runConn(conn, wc)
}

// wsUpgradeHeaders are the request headers the upgrader reads, in canonical form.
var wsUpgradeHeaders = [...]string{"Connection", "Upgrade", "Sec-Websocket-Version", "Sec-Websocket-Key"}

// hijackedWriter hands a connection the HTTP server has given up to the WebSocket upgrader.
type hijackedWriter struct{ conn net.Conn }

func (w hijackedWriter) Header() http.Header         { return http.Header{} }
func (w hijackedWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w hijackedWriter) WriteHeader(int)             {}

func (w hijackedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReaderSize(w.conn, 16), bufio.NewWriterSize(w.conn, 16)), nil
}

// wsVersion13 reports whether a Sec-WebSocket-Version header lists 13.
func wsVersion13(v []byte) bool {
	for f := range strings.SplitSeq(string(v), ",") {
		if strings.TrimSpace(f) == "13" {
			return true
		}
	}
	return false
}

// wsValidKey reports whether a Sec-WebSocket-Key is the base64 of 16 bytes.
func wsValidKey(k []byte) bool {
	k = bytes.TrimSpace(k)
	var buf [24]byte
	if base64.StdEncoding.DecodedLen(len(k)) > len(buf) {
		b, err := base64.StdEncoding.DecodeString(string(k))
		return err == nil && len(b) == 16
	}
	n, err := base64.StdEncoding.Decode(buf[:], k)
	return err == nil && n == 16
}

// forget deletes a connection's record.
func (s *Server) forget(conn *wsConn) {
	if s.cfg.Connections != nil {
		if err := s.cfg.Connections.Delete(conn.id); err != nil && !errors.Is(err, connections.ErrNotFound) {
			s.log.Warn("deleting connection record", "connection_id", conn.id, "err", err)
		}
	}
}

// runConn serves an upgraded socket until it closes, then runs $disconnect. It is the socket's
// reader.
func (s *Server) runConn(c *wsConn, conn *websocket.Conn) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("websocket connection panicked", "connection_id", c.id, "panic", fmt.Sprint(r))
		}
	}()
	defer s.hub.wg.Done()
	defer s.metrics.wsConnections(-1)
	conn.SetReadLimit(int64(c.def().api.ws.settings.MaxMessageBytes))
	c.mu.Lock()
	c.conn = conn
	if c.closing.Load() || len(c.out) > 0 {
		c.startWriter()
	}
	c.mu.Unlock()

	code, reason := websocket.CloseNoStatusReceived, ""
	tooBig := false
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce):
				code, reason = ce.Code, ce.Text
			case errors.Is(err, websocket.ErrReadLimit), errors.Is(err, errFrameTooBig):
				code, reason = websocket.CloseMessageTooBig, "Message too big"
				if errors.Is(err, errFrameTooBig) {
					reason = "Frame too big"
				}
				c.close(code, reason)
				tooBig = true
			default:
				code = websocket.CloseAbnormalClosure
			}
			if code == websocket.CloseAbnormalClosure {
				reason = ""
			}
			break
		}
		if typ == websocket.TextMessage && !utf8.Valid(data) {
			// RFC 6455 §8.1: a text message must be UTF-8; the endpoint fails the connection.
			code, reason = websocket.CloseInvalidFramePayloadData, "Invalid UTF-8 in text message"
			c.close(code, reason)
			break
		}
		now := time.Now()
		c.lastActive.Store(now.UnixNano())
		c.receive(inboundMessage{data: data, binary: typ == websocket.BinaryMessage, at: now})
	}
	// Whoever closed, the writer finishes the close handshake (or gives up) and the socket ends once
	// the writer and the handler are done.
	c.mu.Lock()
	c.closeLocked(code, reason)
	for c.writing || c.handling {
		c.cond.Wait()
	}
	c.mu.Unlock()
	if tooBig {
		// The client may still be sending the rest of its message: read and drop it until the
		// client answers the close frame and closes, or the read deadline the writer set passes.
		// Closing with its bytes unread would reset the connection, and the client would see an
		// error instead of the close frame.
		io.Copy(io.Discard, conn.UnderlyingConn())
	}
	conn.Close()
	s.hub.remove(c)
	s.forget(c)
	if c.closeCode != 0 {
		code, reason = int(c.closeCode), c.closeReason
	}
	b := c.def()
	if idx, ok := b.api.ws.routes["$disconnect"]; ok {
		if _, err := s.invokeWS(c, b, idx, WSEventContext{EventType: "DISCONNECT", RouteKey: "$disconnect", RequestID: NewRequestID(),
			Time: time.Now(), StatusCode: code, Reason: reason}); err != nil {
			s.log.Warn("$disconnect failed", "api", b.api.ID, "connection_id", c.id, "err", err)
		}
	}
}

type inboundMessage struct {
	data   []byte
	binary bool
	at     time.Time
}

// receive queues a message from the client for the handler, which it starts if it is not running.
// It waits while inboundQueue messages wait (and the client with it); once the socket closes,
// messages are dropped.
func (c *wsConn) receive(m inboundMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.in) >= inboundQueue && !c.closing.Load() {
		c.cond.Wait()
	}
	if c.closing.Load() {
		return
	}
	c.in = append(c.in, m)
	if !c.handling {
		c.handling = true
		go c.handleLoop()
	}
}

// handleLoop handles the queued messages one at a time, and ends when none is left.
func (c *wsConn) handleLoop() {
	for {
		c.mu.Lock()
		if len(c.in) == 0 {
			c.in, c.handling = nil, false
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		m := c.in[0]
		c.in[0] = inboundMessage{}
		c.in = c.in[1:]
		c.cond.Broadcast()
		c.mu.Unlock()
		c.srv.handleMessage(c, m)
	}
}

// writeLoop owns writes to the socket while it runs: queued frames, a ping, and the close
// handshake. It ends when there is nothing left to write.
func (c *wsConn) writeLoop() {
	c.mu.Lock()
	for {
		var err error
		if len(c.out) > 0 && c.out[0].partial {
			// The rest of a frame whose start is on the wire goes first, even when the socket is
			// closing: the wire is held for it (wireBusy) until it is written.
			if !c.writeHead() {
				return
			}
			continue
		}
		// The library may be writing a control frame of the reader's (a pong, a close).
		for c.wireBusy {
			c.cond.Wait()
		}
		if c.closeSent {
			c.out = nil // the socket is closing, and runConn will say so
		}
		switch {
		case c.closing.Load():
			c.closeDone, c.out = true, nil
			code, reason := int(c.closeCode), c.closeReason
			c.mu.Unlock()
			// Send the close frame, then give the client a moment to answer before the socket is
			// torn down; the reader sees its close frame (or the socket closing) and ends.
			if code != websocket.CloseAbnormalClosure && code != websocket.CloseNoStatusReceived {
				c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
			}
			// The reader ends on its read deadline if the client never answers.
			c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			c.mu.Lock()
			c.writing = false
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		case len(c.out) > 0:
			if !c.writeHead() {
				return
			}
			continue
		case c.pingDue:
			c.pingDue = false
			c.mu.Unlock()
			err = c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
		default:
			c.out, c.writing = nil, false
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		if err != nil {
			c.failLocked()
			return
		}
	}
}

// writeHead writes the first queued frame with c.mu released and the wire held, and reports
// whether it was written; a failed write ends the socket (failLocked, which releases c.mu). c.mu is
// held.
func (c *wsConn) writeHead() bool {
	m := c.out[0]
	c.out[0] = outbound{}
	c.out = c.out[1:]
	c.wireBusy = true
	c.mu.Unlock()
	err := c.writeWire(m.data)
	c.mu.Lock()
	c.wireBusy = false
	c.cond.Broadcast()
	if err != nil {
		c.failLocked()
		return false
	}
	return true
}

// failLocked ends a socket whose write failed: the client is gone or too slow, so no close frame
// is sent, and the reader ends now. c.mu is held, and released.
func (c *wsConn) failLocked() {
	if !c.closing.Load() {
		c.closeCode, c.closeReason = websocket.CloseAbnormalClosure, ""
		c.closing.Store(true)
	}
	c.closeDone, c.out, c.writing = true, nil, false
	c.cond.Broadcast()
	c.mu.Unlock()
	c.conn.SetReadDeadline(time.Now())
}

// handleMessage routes one message and runs its function.
func (s *Server) handleMessage(c *wsConn, m inboundMessage) {
	requestID := NewRequestID()
	b := c.def()
	key, ok := b.api.ws.selector.Select(m.data, b.api.ws.keys)
	if !ok {
		c.enqueue(WSErrorFrame("Forbidden", c.id, requestID))
		return
	}
	idx := b.api.ws.routes[key]
	out, err := s.invokeWS(c, b, idx, WSEventContext{EventType: "MESSAGE", RouteKey: key, RequestID: requestID, MessageID: NewRequestID(),
		Time: m.at, Body: m.data, Binary: m.binary})
	if err != nil {
		s.log.Warn("websocket message failed", "api", b.api.ID, "route", key, "connection_id", c.id, "request_id", requestID, "err", err)
		c.enqueue(WSErrorFrame("Internal server error", c.id, requestID))
		return
	}
	if !b.api.Routes[idx].RouteResponse {
		return
	}
	_, _, body, err := ParseWSResponse(out)
	if err != nil {
		s.metrics.failed(b.api.targets[idx].function, ErrMalformedResponse)
		c.enqueue(WSErrorFrame("Internal server error", c.id, requestID))
		return
	}
	if len(body) > 0 {
		c.enqueue(body)
	}
}

// invokeWS runs route idx of b's API with an event built from ev and the connection's context.
func (s *Server) invokeWS(c *wsConn, b *wsBinding, idx int, ev WSEventContext) ([]byte, error) {
	route, tgt := b.api.Routes[idx], b.api.targets[idx]
	ev.APIID, ev.Stage, ev.DomainName = b.api.ID, b.stage.Name, c.domain
	ev.ConnectionID, ev.ConnectedAt = c.id, time.Unix(0, c.connectedAt)
	ev.SourceIP, ev.UserAgent = c.sourceIP, c.userAgent
	ev.StageVariables, ev.Authorizer = b.stage.Variables, c.authorizer
	event, err := BuildWSEvent(ev)
	if err != nil {
		return nil, fmt.Errorf("building %s event: %w", ev.EventType, err)
	}
	called := time.Now()
	traceParent := ""
	var span trace.Span
	if s.cfg.Tracer != nil {
		// Each event of a connection is a trace of its own.
		var ctx context.Context
		ctx, span = s.cfg.Tracer.Start(context.Background(), "websocket "+route.Key, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("websocket.event_type", ev.EventType), attribute.String("websocket.connection_id", c.id),
				attribute.String("faas.invocation_id", ev.RequestID)))
		traceParent = tracing.TraceParent(ctx)
	}
	out, err := s.call(invocation{target: tgt, label: "route " + route.Key, requestID: ev.RequestID, traceParent: traceParent,
		deadline: time.Now().Add(route.Timeout), timeout: route.Timeout, payload: event, api: b.api.ID, route: route.Key})
	if span != nil {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	if b.stage.AccessLog != nil && s.cfg.AccessLogs != nil {
		s.logWSEvent(c, b, route.Key, ev, called, out, err)
	}
	return out, err
}

// logWSEvent writes the access log line of one WebSocket event: its status is the function's
// statusCode (200 when it gave none), or the gateway's for a failed call.
func (s *Server) logWSEvent(c *wsConn, b *wsBinding, routeKey string, ev WSEventContext, called time.Time, out []byte, err error) {
	start := ev.Time
	if start.IsZero() {
		start = called
	}
	a := accessInfo{api: b.api, stage: b.stage, routeKey: routeKey, requestID: ev.RequestID, start: start, err: err,
		integrationLatency: time.Since(called), eventType: ev.EventType, connectionID: c.id, messageID: ev.MessageID,
		connectedAt: time.Unix(0, c.connectedAt), sourceIP: c.sourceIP, userAgent: c.userAgent, domain: c.domain, wsAuthorizer: c.authorizer,
		path: b.api.mount + "/" + b.stage.Name, protocol: "HTTP/1.1", method: "GET"}
	if err != nil {
		a.status, _ = s.classify(err)
		a.integrationError = integrationError(err)
		if errors.Is(err, bus.ErrFunctionError) || errors.Is(err, bus.ErrFunctionTimeout) {
			a.integrationStatus = -1
		}
	} else {
		var resp struct {
			StatusCode int `json:"statusCode"`
		}
		a.status = 200
		if json.Unmarshal(out, &resp) == nil && resp.StatusCode != 0 {
			a.status = resp.StatusCode
		}
		a.integrationStatus = a.status
	}
	s.cfg.AccessLogs.Log(b.stage.AccessLog.Destination, s.accessLine(b.stage.AccessLog, &a))
}

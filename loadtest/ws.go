package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
)

// Limits and defaults of a WebSocket run.
const (
	DefaultWSConnections   = 100
	MaxWSConnections       = 1_000_000
	DefaultConnectParallel = 64
	DefaultMessageRate     = 100
	DefaultWSMessage       = `{"action":"echo","data":"{{seq}}"}`
	DefaultFanoutMessage   = `{"type":"loadtest","data":"{{seq}}"}`
	DefaultFanoutRounds    = 3
	DefaultPostParallel    = 64
	DefaultWSTimeout       = 10 * time.Second
	DefaultReplyTimeout    = 5 * time.Second
	DefaultRegion          = "us-east-1"
	connectionsPerSource   = 10_000
	maxSources             = 254
	maxFanoutRounds        = 1000
	closeWait              = 2 * time.Second
	userAgentPrefix        = "gatehouse-loadtest/"
	connectionsPathSegment = "/@connections/"
)

// WSConfig describes one WebSocket load run: open Connections connections, send messages at
// MessageRate for Duration and time their echoes, optionally time fan-out through @connections, then
// close every connection.
type WSConfig struct {
	Target          string      // ws://HOST:PORT/STAGE-PATH
	Header          http.Header // extra handshake headers
	Connections     int
	ConnectRate     float64 // connections opened per second; 0: as fast as ConnectParallel allows
	ConnectParallel int     // most handshakes in progress at once
	// Sources is the number of source addresses 127.0.0.1, 127.0.0.2, … the connections are spread
	// over; 0 picks one per 10,000 connections. Only an IPv4 loopback target can use more than one.
	Sources     int
	Duration    time.Duration // length of the message phase
	MessageRate float64       // messages per second over all connections; 0: no message phase
	// Message is the message template: {{seq}} becomes a marker unique to the message, {{ts}} the
	// send time in Unix milliseconds. A reply is any frame, on the sending connection, that carries
	// the marker.
	Message      string
	Timeout      time.Duration // handshake, write and post timeout
	ReplyTimeout time.Duration // how long replies may take after the last send, and each fan-out round

	// Fan-out: POST a message to every connection through @connections and time its delivery.
	Fanout        bool
	FanoutRounds  int
	FanoutMessage string // template like Message
	PostParallel  int
	Region        string
	AccessKey     string
	SecretKey     string
	// Connection ids come from the reply to IDMessage (any frame with a "connectionId" field), or
	// from the admin API's connection listing at IDAdmin (with IDAdminToken), matched by the user
	// agent each connection sends.
	IDMessage    string
	IDAdmin      string
	IDAdminToken string

	Progress        io.Writer
	ProgressInPlace bool
}

func (c *WSConfig) normalize() error {
	if c.Connections == 0 {
		c.Connections = DefaultWSConnections
	}
	if c.Connections < 0 || c.Connections > MaxWSConnections {
		return fmt.Errorf("connections %d is out of range [1, %d]", c.Connections, MaxWSConnections)
	}
	if c.ConnectRate < 0 || c.MessageRate < 0 {
		return fmt.Errorf("rates must not be negative")
	}
	if c.ConnectRate > 0 && float64(c.Connections)/c.ConnectRate > MaxDuration.Seconds() {
		return fmt.Errorf("%d connections at %g/s take longer than %s", c.Connections, c.ConnectRate, MaxDuration)
	}
	if c.ConnectParallel <= 0 {
		c.ConnectParallel = DefaultConnectParallel
	}
	if c.Sources < 0 || c.Sources > maxSources {
		return fmt.Errorf("sources %d is out of range [1, %d]", c.Sources, maxSources)
	}
	if c.Sources == 0 {
		c.Sources = min(maxSources, (c.Connections+connectionsPerSource-1)/connectionsPerSource)
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return fmt.Errorf("duration %s is out of range (0, %s]", c.Duration, MaxDuration)
	}
	if c.Message == "" {
		c.Message = DefaultWSMessage
	}
	if c.MessageRate > 0 && !strings.Contains(c.Message, "{{seq}}") {
		return fmt.Errorf("the message template must contain {{seq}}, which marks each message so that its reply can be found")
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultWSTimeout
	}
	if c.ReplyTimeout <= 0 {
		c.ReplyTimeout = DefaultReplyTimeout
	}
	if c.PostParallel <= 0 {
		c.PostParallel = DefaultPostParallel
	}
	if c.Fanout {
		if c.FanoutRounds == 0 {
			c.FanoutRounds = DefaultFanoutRounds
		}
		if c.FanoutRounds < 0 || c.FanoutRounds > maxFanoutRounds {
			return fmt.Errorf("fan-out rounds %d is out of range [1, %d]", c.FanoutRounds, maxFanoutRounds)
		}
		if c.FanoutMessage == "" {
			c.FanoutMessage = DefaultFanoutMessage
		}
		if !strings.Contains(c.FanoutMessage, "{{seq}}") {
			return fmt.Errorf("the fan-out message template must contain {{seq}}")
		}
		if c.AccessKey == "" || c.SecretKey == "" {
			return fmt.Errorf("fan-out posts to @connections, which needs an access key and its secret (--access-key, --secret-key, or $GATEHOUSE_ACCESS_KEY and $GATEHOUSE_SECRET_KEY)")
		}
		if c.Region == "" {
			c.Region = DefaultRegion
		}
		if (c.IDMessage == "") == (c.IDAdmin == "") {
			return fmt.Errorf("fan-out needs the connections' ids: give either --id-message (a message whose reply carries the connectionId) or --ids-from-admin (the admin API, whose connection listing names them)")
		}
	}
	return nil
}

// WSResult is the outcome of a WebSocket run.
type WSResult struct {
	Target      string
	Connections int // connections asked for
	Sources     int
	Elapsed     time.Duration
	// Connect phase: handshake latency from the start of each dial.
	Connected        int64
	ConnectElapsed   time.Duration
	Connect          *Hist
	ConnectPerSecond []*Hist
	// Message phase: round trip from each message's due time until its marker came back.
	MessageRate    float64
	MessageElapsed time.Duration
	Sent           int64
	Received       int64
	Lost           int64 // sent but not answered within the reply timeout
	Late           int64 // messages that could not be sent on time because their connection was busy writing
	RTT            *Hist
	RTTPerSecond   []*Hist
	OtherFrames    int64 // frames that carried none of this run's markers
	// Fan-out phase.
	IDs             int64 // connection ids learned
	FanoutRounds    int
	FanoutPosts     map[int]int64 // @connections answers by status
	FanoutExpected  int64         // deliveries expected: connections posted to with 200, over all rounds
	FanoutDelivered int64
	FanoutDelivery  *Hist // from the start of a round until each connection received it
	FanoutComplete  *Hist // from the start of a round until the last connection received it
	// Closing.
	ClosedCleanly int64 // connections whose close handshake (1000) the server answered
	// Errors counts failures by phase and kind ("connect: status 403", "send: connection reset",
	// "closed by server: 1001", …).
	Errors map[string]int64
}

// ConnectRate is the achieved rate of successful connects.
func (r *WSResult) ConnectRate() float64 {
	if r.ConnectElapsed <= 0 {
		return 0
	}
	return float64(r.Connected) / r.ConnectElapsed.Seconds()
}

// ErrorCount is the number of failures of every kind, lost messages not included.
func (r *WSResult) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// wsConn is one client connection.
type wsConn struct {
	idx     int
	c       *websocket.Conn
	wmu     sync.Mutex // serialises data writes
	mu      sync.Mutex
	pending map[uint64]time.Time // marker seq → due time of messages awaiting their reply
	idWait  chan string          // while learning ids by message: the first connection id seen
	id      string
	// fanRound is the last fan-out round this connection received.
	fanRound atomic.Int64
	// alive is false once the connection ended.
	alive    atomic.Bool
	readDone chan struct{}
	closedOK atomic.Bool // the server answered our close frame with 1000
}

// fanoutRound is the fan-out round in progress.
type fanoutRound struct {
	n         int64
	start     time.Time
	remaining atomic.Int64
	done      chan struct{}
	last      atomic.Int64 // latest receipt, as nanoseconds since start
}

type wsRunner struct {
	cfg       WSConfig
	target    *url.URL
	prefix    string // marker prefix: unique to the run
	runID     string
	dialers   []*websocket.Dialer
	start     time.Time
	closing   atomic.Bool
	round     atomic.Pointer[fanoutRound]
	sent      atomic.Int64
	connected atomic.Int64
	pending   atomic.Int64 // messages awaiting their reply

	mu        sync.Mutex // guards res, phase, window
	res       *WSResult
	phase     string
	msgStart  time.Time
	window    *Hist
	connWin   *Hist
	connsMu   sync.Mutex
	conns     []*wsConn
	connIndex map[int]*wsConn
}

func (r *wsRunner) fail(phase string, kind string) {
	r.mu.Lock()
	r.res.Errors[phase+": "+kind]++
	r.mu.Unlock()
}

// RunWS runs a WebSocket load test as cfg describes. ctx cancels it early; the connections are closed
// either way.
func RunWS(ctx context.Context, cfg WSConfig) (*WSResult, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	u, err := CheckWSTarget(ctx, cfg.Target)
	if err != nil {
		return nil, err
	}
	if cfg.IDAdmin != "" {
		if _, err := CheckTarget(ctx, cfg.IDAdmin); err != nil {
			return nil, fmt.Errorf("--ids-from-admin: %v", err)
		}
	}
	var rid [4]byte
	_, _ = rand.Read(rid[:])
	r := &wsRunner{
		cfg: cfg, target: u, runID: hex.EncodeToString(rid[:]),
		res: &WSResult{
			Target: u.String(), Connections: cfg.Connections, MessageRate: cfg.MessageRate,
			Connect: NewHist(3), RTT: NewHist(3), FanoutDelivery: NewHist(3), FanoutComplete: NewHist(3),
			FanoutPosts: map[int]int64{}, Errors: map[string]int64{},
		},
		window: NewHist(2), connWin: NewHist(2), connIndex: map[int]*wsConn{},
	}
	r.prefix = "gh-lt-" + r.runID + "-"
	if err := r.makeDialers(ctx); err != nil {
		return nil, err
	}
	r.res.Sources = len(r.dialers)
	r.start = time.Now()

	progressCtx, stopProgress := context.WithCancel(ctx)
	progressDone := make(chan struct{})
	if cfg.Progress != nil {
		go r.progress(progressCtx, progressDone)
	} else {
		close(progressDone)
	}

	r.connectAll(ctx)
	if ctx.Err() == nil && cfg.MessageRate > 0 && len(r.conns) > 0 {
		r.messages(ctx)
	}
	if ctx.Err() == nil && cfg.Fanout && len(r.conns) > 0 {
		r.fanout(ctx)
	}
	r.setPhase("closing")
	r.closeAll()
	stopProgress()
	<-progressDone

	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Elapsed = time.Since(r.start)
	r.res.Connected = r.connected.Load()
	r.res.Sent = r.sent.Load()
	r.res.Lost = r.res.Sent - r.res.Received
	return r.res, nil
}

func (r *wsRunner) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

// makeDialers prepares one dialer per source address. With more than one source, every connection
// goes to the target's IPv4 loopback address from 127.0.0.k.
func (r *wsRunner) makeDialers(ctx context.Context) error {
	tlsConf := &tls.Config{InsecureSkipVerify: true} // loopback only; local certificates
	mk := func(local net.Addr, to string) *websocket.Dialer {
		nd := &net.Dialer{Timeout: r.cfg.Timeout, LocalAddr: local, Control: loopbackOnly}
		return &websocket.Dialer{
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if to != "" {
					_, port, err := net.SplitHostPort(addr)
					if err != nil {
						return nil, err
					}
					addr = net.JoinHostPort(to, port)
					network = "tcp4"
				}
				return nd.DialContext(ctx, network, addr)
			},
			Proxy:            nil, // never through a proxy from the environment
			TLSClientConfig:  tlsConf,
			HandshakeTimeout: r.cfg.Timeout,
			ReadBufferSize:   2048,
			WriteBufferSize:  2048,
		}
	}
	if r.cfg.Sources <= 1 {
		r.dialers = []*websocket.Dialer{mk(nil, "")}
		return nil
	}
	host := r.target.Hostname()
	var v4addr netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		v4addr = a.Unmap()
	} else {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		if err != nil || len(ips) == 0 {
			return fmt.Errorf("%d source addresses need an IPv4 loopback target; %s has no IPv4 address", r.cfg.Sources, host)
		}
		v4addr = ips[0].Unmap()
	}
	if !v4addr.Is4() {
		return fmt.Errorf("%d source addresses need an IPv4 loopback target, not %s (use --sources 1)", r.cfg.Sources, host)
	}
	for k := range r.cfg.Sources {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(k+1))}
		r.dialers = append(r.dialers, mk(local, v4addr.String()))
	}
	return nil
}

// handshakeKind names why a handshake failed.
func handshakeKind(resp *http.Response, err error) string {
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		return "status " + strconv.Itoa(resp.StatusCode)
	}
	if errors.Is(err, websocket.ErrBadHandshake) {
		return "bad handshake"
	}
	return errorKind(err)
}

// connectAll opens the connections at the configured rate, at most ConnectParallel at a time.
func (r *wsRunner) connectAll(ctx context.Context) {
	r.setPhase("connect")
	cfg := &r.cfg
	slots := make(chan struct{}, cfg.ConnectParallel)
	var wg sync.WaitGroup
	var interval time.Duration
	if cfg.ConnectRate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.ConnectRate)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	begin := time.Now()
loop:
	for i := range cfg.Connections {
		if interval > 0 {
			if wait := time.Until(begin.Add(time.Duration(i) * interval)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					break loop
				}
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Go(func() {
			defer func() { <-slots }()
			r.connect(ctx, i)
		})
	}
	wg.Wait()
	r.mu.Lock()
	r.res.ConnectElapsed = time.Since(begin)
	r.mu.Unlock()
	// Keep the connections in index order, so that messages spread evenly.
	r.connsMu.Lock()
	r.conns = r.conns[:0]
	for i := range cfg.Connections {
		if c, ok := r.connIndex[i]; ok {
			r.conns = append(r.conns, c)
		}
	}
	r.connsMu.Unlock()
}

func (r *wsRunner) connect(ctx context.Context, i int) {
	h := http.Header{}
	for k, vs := range r.cfg.Header {
		h[k] = append([]string(nil), vs...)
	}
	h.Set("User-Agent", userAgentPrefix+r.runID+"/"+strconv.Itoa(i))
	d := r.dialers[i%len(r.dialers)]
	dctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	s := time.Now()
	c, resp, err := d.DialContext(dctx, r.target.String(), h)
	done := time.Now()
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			return // the run was cancelled
		}
		r.fail("connect", handshakeKind(resp, err))
		return
	}
	lat := done.Sub(s)
	r.mu.Lock()
	r.res.Connect.Record(lat)
	r.connWin.Record(lat)
	sec := max(0, int(s.Sub(r.start)/time.Second))
	for len(r.res.ConnectPerSecond) <= sec {
		r.res.ConnectPerSecond = append(r.res.ConnectPerSecond, NewHist(2))
	}
	r.res.ConnectPerSecond[sec].Record(lat)
	r.mu.Unlock()
	r.connected.Add(1)
	wc := &wsConn{idx: i, c: c, pending: map[uint64]time.Time{}, readDone: make(chan struct{})}
	wc.alive.Store(true)
	r.connsMu.Lock()
	r.connIndex[i] = wc
	r.conns = append(r.conns, wc)
	r.connsMu.Unlock()
	go r.read(wc)
}

// connectionIDRE finds a connection id in a frame, also inside a JSON string (escaped quotes).
var connectionIDRE = regexp.MustCompile(`\\?"connectionId\\?"\s*:\s*\\?"([A-Za-z0-9_-]{8,64})`)

// read receives the connection's frames until it ends, and matches the markers they carry.
func (r *wsRunner) read(wc *wsConn) {
	defer close(wc.readDone)
	for {
		_, data, err := wc.c.ReadMessage()
		now := time.Now()
		if err != nil {
			wc.alive.Store(false)
			var ce *websocket.CloseError
			isClose := errors.As(err, &ce)
			if r.closing.Load() {
				if isClose && ce.Code == websocket.CloseNormalClosure {
					wc.closedOK.Store(true)
				}
				return
			}
			if isClose {
				r.fail("closed by server", strconv.Itoa(ce.Code))
			} else {
				r.fail("connection lost", errorKind(err))
			}
			return
		}
		r.frame(wc, data, now)
	}
}

func (r *wsRunner) frame(wc *wsConn, data []byte, now time.Time) {
	matched := false
	wc.mu.Lock()
	idWait := wc.idWait
	wc.mu.Unlock()
	if idWait != nil {
		if m := connectionIDRE.FindSubmatch(data); m != nil {
			select {
			case idWait <- string(m[1]):
			default:
			}
			matched = true
		}
	}
	rest := data
	for {
		i := bytes.Index(rest, []byte(r.prefix))
		if i < 0 {
			break
		}
		rest = rest[i+len(r.prefix):]
		if len(rest) < 2 {
			break
		}
		kind := rest[0]
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		n, err := strconv.ParseUint(string(rest[1:j]), 10, 64)
		rest = rest[j:]
		if err != nil {
			continue
		}
		switch kind {
		case 'm':
			wc.mu.Lock()
			due, ok := wc.pending[n]
			delete(wc.pending, n)
			wc.mu.Unlock()
			if ok {
				matched = true
				r.pending.Add(-1)
				r.recordRTT(due, now)
			}
		case 'f':
			rd := r.round.Load()
			if rd == nil || rd.n != int64(n) {
				continue
			}
			if old := wc.fanRound.Load(); old < rd.n && wc.fanRound.CompareAndSwap(old, rd.n) {
				matched = true
				d := now.Sub(rd.start)
				for {
					last := rd.last.Load()
					if int64(d) <= last || rd.last.CompareAndSwap(last, int64(d)) {
						break
					}
				}
				r.mu.Lock()
				r.res.FanoutDelivery.Record(d)
				r.res.FanoutDelivered++
				r.mu.Unlock()
				if rd.remaining.Add(-1) == 0 {
					close(rd.done)
				}
			}
		}
	}
	if !matched {
		r.mu.Lock()
		r.res.OtherFrames++
		r.mu.Unlock()
	}
}

func (r *wsRunner) recordRTT(due, now time.Time) {
	lat := now.Sub(due)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Received++
	r.res.RTT.Record(lat)
	r.window.Record(lat)
	sec := max(0, int(due.Sub(r.msgStart)/time.Second))
	for len(r.res.RTTPerSecond) <= sec {
		r.res.RTTPerSecond = append(r.res.RTTPerSecond, NewHist(2))
	}
	r.res.RTTPerSecond[sec].Record(lat)
}

// fill expands a message template.
func fill(tmpl, marker string, at time.Time) []byte {
	s := strings.ReplaceAll(tmpl, "{{seq}}", marker)
	if strings.Contains(s, "{{ts}}") {
		s = strings.ReplaceAll(s, "{{ts}}", strconv.FormatInt(at.UnixMilli(), 10))
	}
	return []byte(s)
}

func (r *wsRunner) write(wc *wsConn, msg []byte) error {
	wc.wmu.Lock()
	defer wc.wmu.Unlock()
	_ = wc.c.SetWriteDeadline(time.Now().Add(r.cfg.Timeout))
	return wc.c.WriteMessage(websocket.TextMessage, msg)
}

type wsMessage struct {
	seq uint64
	due time.Time
}

// messages sends MessageRate messages a second, round robin over the connections, for Duration, then
// waits up to ReplyTimeout for the outstanding replies.
func (r *wsRunner) messages(ctx context.Context) {
	cfg := &r.cfg
	r.mu.Lock()
	r.phase = "messages"
	r.msgStart = time.Now()
	start := r.msgStart
	r.mu.Unlock()

	queues := make([]chan wsMessage, len(r.conns))
	var writers sync.WaitGroup
	for i, wc := range r.conns {
		q := make(chan wsMessage, 16)
		queues[i] = q
		writers.Go(func() {
			for m := range q {
				if !wc.alive.Load() {
					r.fail("send", "connection closed")
					continue
				}
				wc.mu.Lock()
				wc.pending[m.seq] = m.due
				wc.mu.Unlock()
				r.pending.Add(1)
				err := r.write(wc, fill(cfg.Message, r.prefix+"m"+strconv.FormatUint(m.seq, 10), time.Now()))
				if err != nil {
					wc.mu.Lock()
					_, ok := wc.pending[m.seq]
					delete(wc.pending, m.seq)
					wc.mu.Unlock()
					if ok {
						r.pending.Add(-1)
					}
					r.fail("send", errorKind(err))
					continue
				}
				r.sent.Add(1)
			}
		})
	}

	end := start.Add(cfg.Duration)
	interval := time.Duration(float64(time.Second) / cfg.MessageRate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var late int64
schedule:
	for i := uint64(0); ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(end) {
			break
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break schedule
			}
		}
		q := queues[i%uint64(len(queues))]
		m := wsMessage{seq: i, due: due}
		select {
		case q <- m:
		default:
			late++
			select {
			case q <- m:
			case <-ctx.Done():
				break schedule
			}
		}
	}
	for _, q := range queues {
		close(q)
	}
	writers.Wait()
	sendEnd := time.Now()

	// Wait for the replies still outstanding.
	deadline := time.Now().Add(cfg.ReplyTimeout)
	for r.pending.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	// Replies that come later are not counted: their messages are lost.
	for _, wc := range r.conns {
		wc.mu.Lock()
		clear(wc.pending)
		wc.mu.Unlock()
	}
	r.pending.Store(0)
	r.mu.Lock()
	r.res.Late = late
	r.res.MessageElapsed = sendEnd.Sub(start)
	r.mu.Unlock()
}

// closeAll closes every connection with a close frame (1000) and waits briefly for the server's.
func (r *wsRunner) closeAll() {
	r.closing.Store(true)
	slots := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, wc := range r.conns {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			if wc.alive.Load() {
				_ = wc.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
				timer := time.NewTimer(closeWait)
				select {
				case <-wc.readDone:
				case <-timer.C:
				}
				timer.Stop()
			}
			wc.c.Close()
			<-wc.readDone
		})
	}
	wg.Wait()
	var clean int64
	for _, wc := range r.conns {
		if wc.closedOK.Load() {
			clean++
		}
	}
	r.mu.Lock()
	r.res.ClosedCleanly = clean
	r.mu.Unlock()
}

func (r *wsRunner) progress(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	w, inPlace := r.cfg.Progress, r.cfg.ProgressInPlace
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastConn, lastAt := int64(0), r.start
	for {
		select {
		case <-ctx.Done():
			if inPlace {
				fmt.Fprintln(w)
			}
			return
		case now := <-tick.C:
			conn := r.connected.Load()
			rate := float64(conn-lastConn) / now.Sub(lastAt).Seconds()
			lastConn, lastAt = conn, now
			r.mu.Lock()
			phase := r.phase
			recv := r.res.Received
			errs := int64(0)
			for _, c := range r.res.Errors {
				errs += c
			}
			rtt := r.window.Quantile(0.99)
			cp99 := r.connWin.Quantile(0.99)
			r.window, r.connWin = NewHist(2), NewHist(2)
			fanDone := r.res.FanoutDelivered
			r.mu.Unlock()
			line := fmt.Sprintf("%6s  %-8s  connected %d/%d (%.0f/s, p99 %s)  messages %d sent %d received (p99 %s)",
				now.Sub(r.start).Truncate(time.Second), phase, conn, r.cfg.Connections, rate, FormatDuration(cp99),
				r.sent.Load(), recv, FormatDuration(rtt))
			if r.cfg.Fanout {
				line += fmt.Sprintf("  fan-out %d delivered", fanDone)
			}
			line += fmt.Sprintf("  errors %d", errs)
			if inPlace {
				fmt.Fprintf(w, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}
}

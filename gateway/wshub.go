package gateway

import (
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// wsHub holds this node's open sockets, and the sweeper that enforces their time limits and pings
// them.
type wsHub struct {
	mu     sync.Mutex
	conns  map[string]*wsConn
	closed bool
	wg     sync.WaitGroup
	// stop ends the sweeper; nil until the first socket opens.
	stop chan struct{}
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
	if h.stop == nil {
		h.stop = make(chan struct{})
		go h.sweep(h.stop)
	}
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

// lookupBatch is how many ids lookup finds under one hold of the lock.
const lookupBatch = 512

// lookup returns the sockets of ids, nil for those not open here. It takes the lock for a batch of
// ids at a time, so that sockets opening and closing do not wait for a long list.
func (h *wsHub) lookup(ids []string) []*wsConn {
	conns := make([]*wsConn, len(ids))
	for start := 0; start < len(ids); start += lookupBatch {
		h.mu.Lock()
		for i := start; i < min(start+lookupBatch, len(ids)); i++ {
			conns[i] = h.conns[ids[i]]
		}
		h.mu.Unlock()
	}
	return conns
}

// closeAll closes every socket with code and stops taking new ones.
func (h *wsHub) closeAll(code int, reason string) {
	h.mu.Lock()
	h.closed = true
	if h.stop != nil {
		close(h.stop)
	}
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

// sweep checks every socket each sweepInterval, until stop closes: it closes those idle for longer
// than their API's idle timeout or open for longer than its maximum duration, and pings those whose
// last ping is pingInterval ago. One sweeper serves every socket of the node, so that an idle socket
// needs no timer of its own.
func (h *wsHub) sweep(stop chan struct{}) {
	tick := time.NewTicker(sweepInterval)
	defer tick.Stop()
	type closing struct {
		c      *wsConn
		reason string
	}
	var toClose []closing
	var toPing []*wsConn
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			nowNano := now.UnixNano()
			h.mu.Lock()
			for _, c := range h.conns {
				settings := &c.def().api.ws.settings
				switch {
				case time.Duration(nowNano-c.connectedAt) >= settings.MaxDuration:
					toClose = append(toClose, closing{c, "Maximum connection duration"})
				case time.Duration(nowNano-c.lastActive.Load()) >= settings.IdleTimeout:
					toClose = append(toClose, closing{c, "Idle timeout"})
				case time.Duration(nowNano-c.lastPing) >= pingInterval:
					c.lastPing = nowNano
					toPing = append(toPing, c)
				}
			}
			h.mu.Unlock()
			for _, cl := range toClose {
				cl.c.close(websocket.CloseGoingAway, cl.reason)
			}
			for _, c := range toPing {
				c.ping()
			}
			clear(toClose)
			clear(toPing)
			toClose, toPing = toClose[:0], toPing[:0]
		}
	}
}

package gateway

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"gatehouse.dev/gatehouse/connections"
)

// This node's sockets: the local side of @connections, and following API changes.

// PostToConnection sends data to one of this node's sockets (the local side of @connections): a text
// frame when data is UTF-8, binary otherwise. data is not kept.
func (s *Server) PostToConnection(_ context.Context, id string, data []byte) error {
	c := s.hub.get(id)
	if c == nil {
		return ErrConnectionGone
	}
	if len(data) > c.def().api.ws.settings.MaxMessageBytes {
		return connections.ErrPayloadTooLarge
	}
	return c.send(wsFrame(data, !utf8.Valid(data)))
}

// broadcastBatch is how many recipients of a broadcast one goroutine takes at a time.
const broadcastBatch = 64

// BroadcastToConnections posts data to each of this node's sockets in ids and returns the ids that
// were gone (or whose client could not keep up, and was disconnected), in the order of ids.
//
// The frame is built (and data checked for UTF-8) once, and every recipient gets the same bytes.
// The caller and up to 2×GOMAXPROCS−1 helpers take batches of recipients and write the frame to each
// idle socket at once; a socket that is busy, or whose buffer is full, gets it in its queue, behind
// what it already has. So a broadcast starts no goroutine per recipient, and a slow client holds up
// no one.
func (s *Server) BroadcastToConnections(_ context.Context, ids []string, data []byte) []string {
	frame := wsFrame(data, !utf8.Valid(data))
	conns := s.hub.lookup(ids)
	failed := make([]bool, len(ids))
	var next atomic.Int64
	deliver := func() {
		for {
			end := int(next.Add(broadcastBatch))
			start := end - broadcastBatch
			if start >= len(ids) {
				return
			}
			for i := start; i < min(end, len(ids)); i++ {
				c := conns[i]
				failed[i] = c == nil || len(data) > c.def().api.ws.settings.MaxMessageBytes || c.send(frame) != nil
			}
		}
	}
	var wg sync.WaitGroup
	for range min(2*runtime.GOMAXPROCS(0), (len(ids)+broadcastBatch-1)/broadcastBatch) - 1 {
		wg.Go(deliver)
	}
	deliver()
	wg.Wait()
	var gone []string
	for i, f := range failed {
		if f {
			gone = append(gone, ids[i])
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
	b := c.def()
	return connections.Record{ID: c.id, API: b.api.ID, Stage: b.stage.Name, ConnectedAt: time.Unix(0, c.connectedAt),
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
		if api == "" || c.def().api.ID == api {
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

// rebind moves sockets (all of this node's when none are given) to the APIs' new definitions: a
// socket of an API (and stage) that still exists stays open and routes its next messages by the new
// definition; a socket of an API or stage that is gone is closed with 1001.
func (s *Server) rebind(apis []*compiledAPI, conns ...*wsConn) {
	byID := make(map[string]*compiledAPI, len(apis))
	for _, a := range apis {
		if a.ws != nil {
			byID[a.ID] = a
		}
	}
	if len(conns) == 0 {
		s.hub.mu.Lock()
		for _, c := range s.hub.conns {
			conns = append(conns, c)
		}
		s.hub.mu.Unlock()
	}
	for _, c := range conns {
		old := c.def()
		if a, ok := byID[old.api.ID]; ok {
			if st, ok := a.stages[old.stage.Name]; ok {
				c.bound.Store(&wsBinding{api: a, stage: st})
				continue
			}
		}
		c.close(websocket.CloseGoingAway, "API removed")
	}
}

package gateway

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"gatehouse.dev/gatehouse/connections"
)

// This node's sockets: the local side of @connections, and following API changes.

// PostToConnection sends data to one of this node's sockets (the local side of @connections).
func (s *Server) PostToConnection(_ context.Context, id string, data []byte) error {
	return s.post(id, outbound{data: data, binary: !utf8.Valid(data)})
}

func (s *Server) post(id string, m outbound) error {
	c := s.hub.get(id)
	if c == nil {
		return ErrConnectionGone
	}
	if len(m.data) > c.def().api.ws.settings.MaxMessageBytes {
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
	b := c.def()
	return connections.Record{ID: c.id, API: b.api.ID, Stage: b.stage.Name, ConnectedAt: c.connectedAt,
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

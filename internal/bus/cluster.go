package bus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterConfig makes the embedded server one node of a NATS cluster whose JetStream is clustered.
//
// Only the route listener crosses machines: the client listener keeps its loopback rule, so each node's
// gateway, workers and control process talk to their own node's server, and nodes talk to each other
// over routes.
type ClusterConfig struct {
	// Name is the NATS cluster name, the same on every node. Required: clustered JetStream refuses a
	// dynamic (generated) cluster name.
	Name string
	// Listen is the host:port the route listener binds, e.g. "0.0.0.0:6222" or "10.0.0.5:6222". Any
	// address is allowed (routes are what cross machines); the port must be fixed, because the other
	// nodes name it in their Routes.
	Listen string
	// Routes are the host:port of other nodes' route listeners. At least one is required: nats-server
	// starts clustered JetStream only with configured routes. The list may name this node's own Listen
	// address (nats-server detects a route to itself and drops it), so every node can be given the same
	// list. Routes to configured addresses are retried for as long as the server runs, so nodes can
	// start in any order.
	Routes []string
	// User and Password are the route credentials, the same on every node: a server accepts a route only
	// with them and presents them on the routes it opens. Both are required; neither ever appears in an
	// error or a log line.
	User     string
	Password string
	// TLS, when set, is the routes' TLS configuration, both ways (the listener's and the routes this
	// node opens); every node of the cluster must then have one.
	TLS *tls.Config
}

// How often a clustered server pings its routes (and clients), and how many pings may go unanswered
// before it closes the connection.
const (
	RoutePingInterval = time.Second
	RouteMaxPingsOut  = 3
)

// ErrSingleNodeStore reports a store directory that holds single-node (non-clustered) JetStream state
// while the server is configured to join a cluster.
var ErrSingleNodeStore = errors.New("bus: store holds single-node JetStream state")

// validate checks c statically; it does no I/O.
func (c *ClusterConfig) validate(nodeName, storeDir string) error {
	if c.Name == "" || strings.ContainsAny(c.Name, " \t\r\n") {
		return fmt.Errorf("bus: cluster name %q: must be non-empty without spaces", c.Name)
	}
	// Every clustered JetStream server needs a unique, stable server name: it is how the meta group and
	// the stream groups know their peers across restarts.
	if nodeName == "" || strings.ContainsAny(nodeName, " \t\r\n") {
		return fmt.Errorf("bus: node name %q: required with a cluster, without spaces", nodeName)
	}
	// Every node runs JetStream: replicas are sized from the cluster's node count (see Replicas), so a
	// node without a store would be counted but could hold no replica.
	if storeDir == "" {
		return errors.New("bus: a cluster node needs a store directory (JetStream runs on every node)")
	}
	if _, err := parseHostPort(c.Listen); err != nil {
		return fmt.Errorf("bus: cluster listen address: %w", err)
	}
	if len(c.Routes) == 0 {
		return errors.New("bus: a cluster needs at least one route (this node's own listen address is allowed)")
	}
	for _, r := range c.Routes {
		if _, err := parseHostPort(r); err != nil {
			return fmt.Errorf("bus: cluster route: %w", err)
		}
	}
	if c.User == "" || c.Password == "" {
		return errors.New("bus: cluster route credentials (user and password) are required")
	}
	return nil
}

type hostPort struct {
	host string
	port int
}

// parseHostPort parses "host:port" with a port in 1..65535. Port 0 is refused: nats-server reads a zero
// cluster port as "no cluster", and the other nodes could not name a random port anyway.
func parseHostPort(s string) (hostPort, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return hostPort{}, fmt.Errorf("%q: %w", s, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return hostPort{}, fmt.Errorf("%q: port must be 1..65535", s)
	}
	return hostPort{host: host, port: port}, nil
}

// applyCluster configures opts for cfg.Cluster; cfg has been validated.
func applyCluster(opts *server.Options, cfg ServerConfig) {
	c := cfg.Cluster
	listen, _ := parseHostPort(c.Listen)
	opts.ServerName = cfg.NodeName
	opts.Cluster = server.ClusterOpts{
		Name: c.Name,
		Host: listen.host,
		Port: listen.port,
		// Route authorization: a peer must present these to be accepted.
		Username: c.User,
		Password: c.Password,
		// Servers gossip their client URLs to clients by default, and nats.go would then fail over to
		// another node's client listener. Our clients hold credentials for their own node only and must
		// stay on it (the client listener is loopback), so nothing is advertised.
		NoAdvertise: true,
	}
	if c.TLS != nil {
		opts.Cluster.TLSConfig = c.TLS
		opts.Cluster.TLSTimeout = 2
	}
	opts.Routes = make([]*url.URL, 0, len(c.Routes))
	for _, r := range c.Routes {
		// The credentials travel in the URL's user info, escaped by url.UserPassword; the URL is never
		// printed (the server runs with NoLog and our errors name only host:port).
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", Host: r, User: url.UserPassword(c.User, c.Password)})
	}
	// No JetStream domain: all nodes form one JetStream, addressed by the ordinary $JS.API subjects.
	opts.JetStreamDomain = ""
	// A peer that vanished without closing its routes (a machine gone, a cable pulled) is noticed after
	// RoutePingInterval × (RouteMaxPingsOut + 1), about 4 s, instead of nats-server's minutes: until then
	// the subscriptions it had still attract messages (connection operations to its sockets wait for
	// their deadline instead of failing at once).
	opts.PingInterval = RoutePingInterval
	opts.MaxPingsOut = RouteMaxPingsOut
}

// checkClusterStore refuses a store directory that has held single-node JetStream.
//
// nats-server keeps stream data under <store>/jetstream/<account>/streams/ in both modes; only a
// clustered server also keeps its Raft state under <store>/jetstream/$SYS/_js_/, starting with the meta
// group's _meta_ directory. A store with streams but no meta group was written by a single-node server:
// its streams are not known to the cluster's meta group, and nats-server may orphan them (or lose them
// to the cluster's view) when such a node joins. Refusing is the only safe default.
func checkClusterStore(storeDir, cluster string) error {
	jsDir := filepath.Join(storeDir, "jetstream")
	accounts, err := os.ReadDir(jsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a fresh store
	}
	if err != nil {
		return fmt.Errorf("bus: reading the store: %w", err)
	}
	if _, err := os.Stat(filepath.Join(jsDir, server.DEFAULT_SYSTEM_ACCOUNT, "_js_", "_meta_")); err == nil {
		return nil // written by a clustered server
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bus: reading the store: %w", err)
	}
	for _, a := range accounts {
		if !a.IsDir() {
			continue
		}
		streams, err := os.ReadDir(filepath.Join(jsDir, a.Name(), "streams"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("bus: reading the store: %w", err)
		}
		if len(streams) > 0 {
			return fmt.Errorf("%w in %s (account %s, %d streams): refusing to join cluster %q, which could "+
				"orphan them; start the cluster from an empty store directory, or move the state into the "+
				"cluster: `gatehouse up --migrate-store` (with the same cluster flags) copies it in once the "+
				"cluster has a quorum, and keeps the single-node store aside",
				ErrSingleNodeStore, storeDir, a.Name(), len(streams), cluster)
		}
	}
	return nil
}

// SingleNodeStore reports whether storeDir holds single-node JetStream state that a clustered
// server would refuse (see ErrSingleNodeStore).
func SingleNodeStore(storeDir string) (bool, error) {
	err := checkClusterStore(storeDir, "")
	if errors.Is(err, ErrSingleNodeStore) {
		return true, nil
	}
	return false, err
}

// ClusterSize returns the number of servers this node currently has routes to, plus itself: 1 for a
// server that is not clustered or has no peers yet, 0 before Start.
//
// It counts connected peers, not every peer the JetStream meta group has ever known, because a stream
// can be placed only on servers that are up: a caller creating a stream sizes its replicas from what
// can hold them now (see Replicas).
func (s *Server) ClusterSize() int {
	if s.ns == nil {
		return 0
	}
	if s.cfg.Cluster == nil {
		return 1
	}
	return s.ns.NumRemotes() + 1
}

// Replicas is the replica count for a stream or bucket created in a cluster of size servers: one per
// server up to three. Three replicas survive the loss of one server; two do not (a two-server Raft
// group has no quorum with one gone), so high availability needs three nodes.
func Replicas(size int) int {
	return max(1, min(3, size))
}

// MetaStatus is the clustered JetStream's meta group as this server sees it.
type MetaStatus struct {
	// Leader is the meta leader's server name; "" while there is none (no quorum reachable).
	Leader string
	// Size is the number of servers the meta group knows, those offline included.
	Size int
	// Peers are the other servers of the meta group.
	Peers []server.PeerInfo
}

// Meta returns the meta group's status; ok is false when the server is not clustered or not started.
func (s *Server) Meta() (MetaStatus, bool) {
	if s.ns == nil || s.cfg.Cluster == nil {
		return MetaStatus{}, false
	}
	info, err := s.ns.Jsz(&server.JSzOptions{})
	if err != nil || info.Meta == nil {
		return MetaStatus{}, true
	}
	st := MetaStatus{Leader: info.Meta.Leader, Size: info.Meta.Size}
	for _, p := range info.Meta.Replicas {
		if p != nil {
			st.Peers = append(st.Peers, *p)
		}
	}
	return st, true
}

// QuorumVisible reports whether this server has routes to a majority of the meta group's servers
// (itself included) and knows a leader: what it needs for its view of stored state to be current.
// A server cut off from the others keeps a leader it no longer hears from for seconds; the routes
// it lost are noticed sooner (RoutePingInterval).
func (s *Server) QuorumVisible() bool {
	st, ok := s.Meta()
	if !ok {
		return s.ns != nil
	}
	size := max(st.Size, 1)
	return st.Leader != "" && s.ClusterSize() > size/2
}

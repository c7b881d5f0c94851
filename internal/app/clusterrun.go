package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/jsopen"
	"gatehouse.dev/gatehouse/internal/logstream"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/tlsconf"
)

// How a node follows the cluster.
const (
	// nodeStatusEvery is how often a node publishes its status.
	nodeStatusEvery = 500 * time.Millisecond
	// nodeSilence is how long a node may go unheard before it no longer counts towards the quorum
	// this node must see to serve.
	nodeSilence = 4 * nodeStatusEvery
	// nodeForgetAfter is how long a node that stopped publishing stays in the cluster status.
	nodeForgetAfter = 30 * time.Second
	// remoteWorkerSilence is how long another node's worker may go without a heartbeat before this
	// node stops counting it among the workers a deploy must reach (the dispatcher's
	// RemoteLostTimeout, by default).
	remoteWorkerSilence = time.Second
	// replicasEvery is how often a node of a cluster checks that the stack's streams have the
	// replicas the cluster's size asks for.
	replicasEvery = 5 * time.Second
)

// startBus starts the embedded NATS server (single or clustered), or takes the external one, and sets
// how this node's processes reach it.
func (n *Node) startBus(stack *spec.Stack) error {
	if n.mode == modeExternal {
		n.busURL = n.opts.NATSURL
		abs := func(f string) (bus.Credentials, error) {
			if f == "" {
				return bus.Credentials{}, nil
			}
			p, err := filepath.Abs(f)
			return bus.Credentials{File: p}, err
		}
		node, err := abs(n.opts.NATSCreds)
		if err != nil {
			return err
		}
		worker := node
		if n.opts.NATSWorkerCreds != "" {
			if worker, err = abs(n.opts.NATSWorkerCreds); err != nil {
				return err
			}
		}
		// The node's own processes use one credentials file, its workers (which run guest code) the
		// worker one when given: what each may do is the external NATS account's to say
		// (`gatehouse cluster nats-permissions`, docs/cluster.md).
		n.busCreds = func(r bus.Role) bus.Credentials {
			if r == bus.RoleWorker {
				return worker
			}
			return node
		}
		return nil
	}
	cfg := bus.ServerConfig{
		Stack:           stack.Name,
		StoreDir:        filepath.Join(n.dataDir, "jetstream"),
		WorkerReads:     workerReads(stack.Name),
		WorkerPublishes: workerPublishes(stack.Name),
	}
	if n.mode == modeCluster {
		// The node id names the server: clustered JetStream knows its peers by name across restarts.
		cfg.NodeName = n.nodeID
		cfg.Cluster = &bus.ClusterConfig{Name: n.opts.Cluster, Listen: n.opts.ClusterListen, Routes: n.opts.Join,
			User: n.clusterSecrets.RouteUser, Password: n.clusterSecrets.RoutePassword}
		if cs := n.clusterSecrets; cs.RouteCACert != "" {
			tlsCfg, err := tlsconf.RouteTLS([]byte(cs.RouteCACert), []byte(cs.RouteCAKey), n.nodeID)
			if err != nil {
				return err
			}
			cfg.Cluster.TLS = tlsCfg
		}
	}
	var err error
	if n.srv, err = bus.NewServer(cfg); err != nil {
		return err
	}
	if err := n.srv.Start(); err != nil {
		return err
	}
	n.busURL = n.srv.ClientURL()
	n.busCreds = n.srv.Credentials
	return nil
}

// workerReads are the streams workers read: the registry's buckets and the functions' key-value
// store; nothing else of JetStream.
func workerReads(stack string) []string {
	return []string{"KV_" + functions.FunctionsBucket(stack), "OBJ_" + functions.ModulesBucket(stack), "KV_" + kvBucket(stack)}
}

// workerPublishes are the subjects workers publish to besides the bus's own: function logs, the
// functions' key-value store and the stack's event bus through host calls.
func workerPublishes(stack string) []string {
	return []string{logstream.SubjectAll(stack), "$KV." + kvBucket(stack) + ".>", "gh." + stack + ".ev.>"}
}

// clusterState follows the other nodes of the stack and this node's own readiness.
type clusterState struct {
	n       *Node
	started time.Time

	mu    sync.Mutex
	nodes map[string]seenNode

	// cut is set while the node has gone longer than its cut-off bound without a quorum of the
	// stored state's servers; draining once Stop began.
	cut      atomic.Bool
	draining atomic.Bool
	// storeOK is the last probe of an external NATS's JetStream.
	storeOK atomic.Bool
	// raising is set while replicas are being raised.
	raising atomic.Bool
}

type seenNode struct {
	status adminapi.NodeStatus
	at     time.Time
}

func newClusterState(n *Node) *clusterState {
	c := &clusterState{n: n, started: time.Now(), nodes: map[string]seenNode{}}
	c.storeOK.Store(true)
	return c
}

// cutOff reports whether the node must not serve: the gateway answers 503 meanwhile.
func (c *clusterState) cutOff() bool { return c.cut.Load() }

// run publishes the node's status, follows the others', keeps the cut-off state, forgets silent
// workers of other nodes, and raises the stack's replicas as the cluster grows, until ctx ends.
func (c *clusterState) run(ctx context.Context) {
	n := c.n
	sub, err := n.control.Conn().Subscribe(n.control.Subjects().NodeStatus(), c.onStatus)
	if err != nil {
		n.log.Error("following the cluster's nodes", "err", err)
	} else {
		defer sub.Unsubscribe()
	}
	tick := time.NewTicker(nodeStatusEvery / 2)
	defer tick.Stop()
	lastQuorum := time.Now()
	var lastStatus, lastReplicas, lastProbe time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if n.mode == modeExternal && now.Sub(lastProbe) >= time.Second {
				lastProbe = now
				go c.probeStore(ctx)
			}
			if c.quorumVisible() {
				lastQuorum = now
				if c.cut.CompareAndSwap(true, false) {
					n.log.Warn("the cluster's stored state is reachable again: serving")
				}
			} else if now.Sub(lastQuorum) > n.opts.CutOff && c.cut.CompareAndSwap(false, true) {
				n.log.Error("cut off from the cluster's stored state: not serving until it is reachable (definitions may be stale)",
					"for", now.Sub(lastQuorum).Round(time.Millisecond))
			}
			n.forgetSilentRemoteWorkers(now)
			if now.Sub(lastStatus) >= nodeStatusEvery {
				lastStatus = now
				c.publish()
			}
			if n.mode != modeSingle && now.Sub(lastReplicas) >= replicasEvery && !c.cut.Load() && c.raising.CompareAndSwap(false, true) {
				// Off this loop: without a quorum it waits for its timeout, and the cut-off must not.
				lastReplicas = now
				go func() {
					defer c.raising.Store(false)
					c.raiseReplicas(ctx)
				}()
			}
		}
	}
}

// quorumVisible reports whether this node sees enough of the stored state's servers to trust its
// view of it now.
func (c *clusterState) quorumVisible() bool {
	n := c.n
	if !n.control.Conn().IsConnected() {
		return false
	}
	switch n.mode {
	case modeCluster:
		// Routes to a majority and a known leader, as the server sees it; and a majority of nodes
		// heard from lately, which a partition silences within a second or two, sooner than the
		// servers notice their routes are dead.
		meta, _ := n.srv.Meta()
		return n.srv.QuorumVisible() && c.heard(time.Now()) > max(meta.Size, 1)/2
	case modeExternal:
		return c.storeOK.Load()
	}
	return true
}

// probeStore asks the external NATS's JetStream for the account's information, bounded by a second.
func (c *clusterState) probeStore(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	js, err := jetstream.New(c.n.control.Conn())
	if err == nil {
		_, err = js.AccountInfo(ctx)
	}
	c.storeOK.Store(err == nil)
}

func (c *clusterState) raiseReplicas(ctx context.Context) {
	n := c.n
	js, err := jetstream.New(n.control.Conn())
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raised, err := jsopen.RaiseReplicas(ctx, js, n.ownsStream, n.wantReplicas())
	if len(raised) > 0 {
		n.log.Info("raised the replicas of the stack's stored state", "streams", strings.Join(raised, ","), "replicas", n.wantReplicas())
	}
	if err != nil && ctx.Err() == nil {
		n.log.Warn("raising the replicas of the stack's stored state", "err", err)
	}
}

// status is this node's status as published.
func (c *clusterState) status() adminapi.NodeStatus {
	n := c.n
	ready, reason := c.readiness()
	st := adminapi.NodeStatus{ID: n.nodeID, Role: n.opts.Role, Gateway: n.GatewayAddr(), Workers: n.localReadyWorkers(),
		Ready: ready, Reason: reason, Started: c.started.UTC()}
	if n.adminLn != nil {
		st.Admin = n.adminLn.Addr().String()
	}
	return st
}

func (c *clusterState) publish() {
	b, _ := json.Marshal(c.status())
	c.n.control.Conn().Publish(c.n.control.Subjects().NodeStatus(), b)
}

func (c *clusterState) onStatus(m *nats.Msg) {
	var st adminapi.NodeStatus
	if json.Unmarshal(m.Data, &st) != nil || bus.ValidToken(st.ID) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[st.ID] = seenNode{status: st, at: time.Now()}
}

// heard counts the nodes heard from within nodeSilence, this one included.
func (c *clusterState) heard(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 1
	for id, s := range c.nodes {
		if id != c.n.nodeID && now.Sub(s.at) <= nodeSilence {
			n++
		}
	}
	return n
}

// readiness is what /healthz says: whether the node can serve, and why not.
func (c *clusterState) readiness() (bool, string) {
	n := c.n
	switch {
	case c.draining.Load():
		return false, "draining"
	case c.cut.Load():
		return false, "cut off from the cluster's stored state"
	case n.opts.Role == RoleGateway:
		if n.dispatcher == nil || len(n.dispatcher.Workers()) == 0 {
			return false, "no workers reachable"
		}
	default:
		if n.readyWorkers() == 0 {
			return false, "no workers"
		}
	}
	return true, ""
}

// nodes returns the nodes seen within nodeForgetAfter, this one first, then by id.
func (c *clusterState) seen(now time.Time) []adminapi.NodeStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []adminapi.NodeStatus
	for id, s := range c.nodes {
		if now.Sub(s.at) > nodeForgetAfter {
			delete(c.nodes, id)
			continue
		}
		st := s.status
		st.SeenMS = now.Sub(s.at).Milliseconds()
		if now.Sub(s.at) > nodeSilence {
			st.Ready, st.Reason = false, "silent (gone, or cut off from this node)"
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b adminapi.NodeStatus) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// clusterStatus answers GET /admin/v1/cluster.
func (n *Node) clusterStatus(ctx context.Context) (adminapi.ClusterStatus, error) {
	now := time.Now()
	st := adminapi.ClusterStatus{Node: n.nodeID, Mode: n.mode}
	self := n.cluster.status()
	st.Nodes = append(st.Nodes, self)
	for _, o := range n.cluster.seen(now) {
		if o.ID != n.nodeID {
			st.Nodes = append(st.Nodes, o)
		}
	}
	st.JetStream.Reachable = !n.cluster.cut.Load() && n.cluster.quorumVisible()
	if n.srv != nil {
		if meta, ok := n.srv.Meta(); ok {
			st.JetStream.Leader, st.JetStream.Size = meta.Leader, meta.Size
			for _, p := range meta.Peers {
				st.JetStream.Peers = append(st.JetStream.Peers, adminapi.JetStreamPeer{Name: p.Name, Current: p.Current, Offline: p.Offline,
					ActiveMS: p.Active.Milliseconds(), Lag: p.Lag})
			}
		}
	}
	js, err := jetstream.New(n.control.Conn())
	if err != nil {
		return st, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	lister := js.ListStreams(ctx)
	for info := range lister.Info() {
		if !n.ownsStream(info.Config.Name) {
			continue
		}
		sr := adminapi.StreamReplicas{Name: info.Config.Name, Replicas: info.Config.Replicas}
		if info.Cluster != nil {
			sr.Leader = info.Cluster.Leader
		}
		st.JetStream.Streams = append(st.JetStream.Streams, sr)
	}
	slices.SortFunc(st.JetStream.Streams, func(a, b adminapi.StreamReplicas) int { return strings.Compare(a.Name, b.Name) })
	// An unreachable JetStream leaves the streams out; the status says so in Reachable.
	return st, nil
}

// ownsStream reports whether a stream (or a bucket's) belongs to this node's stack.
func (n *Node) ownsStream(name string) bool {
	return strings.Contains(name, "gh_"+n.stack.Name+"_")
}

// wantReplicas is the replicas the stack's streams should have: one per server of the stored state's
// cluster, up to three (bus.Replicas). An external NATS is asked for three, and gives what it can.
func (n *Node) wantReplicas() int {
	switch n.mode {
	case modeCluster:
		size := n.srv.ClusterSize()
		if meta, ok := n.srv.Meta(); ok {
			size = max(size, meta.Size)
		}
		return bus.Replicas(size)
	case modeExternal:
		return 3
	}
	return 1
}

// jetStream is the node's JetStream: through jsopen.Replicated in a cluster, so that every store
// creates its buckets with the replicas the cluster asks for.
func (n *Node) jetStream() (jetstream.JetStream, error) {
	js, err := jetstream.New(n.control.Conn())
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if n.mode == modeSingle {
		return js, nil
	}
	return jsopen.Replicated(js, n.wantReplicas), nil
}

// waitJetStream waits until the stored state's JetStream answers: at once on a single node; in a
// cluster, once a quorum of its servers has formed (the first node waits for a second).
func (n *Node) waitJetStream(ctx context.Context) error {
	js, err := jetstream.New(n.control.Conn())
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	deadline := time.Now().Add(n.opts.ReadyTimeout)
	said := false
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil && (n.srv == nil || n.srv.QuorumVisible()) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the stored state's JetStream did not answer within %s (%v): in a cluster, a quorum of its nodes must be up (2 of 3)", n.opts.ReadyTimeout, err)
		}
		if !said {
			said = true
			fmt.Fprintln(n.opts.Stdout, "waiting for the cluster's JetStream (a quorum of its nodes) …")
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// clusterLine describes the node's bus for the start-up summary.
func (n *Node) clusterLine() string {
	if n.mode == modeExternal {
		return "external NATS " + n.busURL
	}
	return fmt.Sprintf("cluster %q, routes on %s", n.opts.Cluster, n.opts.ClusterListen)
}

// workerSuffix ends the ids of this node's workers: "" on a single node, "-" and the node's id in a
// cluster, where worker ids must be unique across nodes.
func (n *Node) workerSuffix() string {
	if n.mode == modeSingle {
		return ""
	}
	return "-" + n.nodeID
}

// isLocalWorker reports whether worker id is one of this node's.
func (n *Node) isLocalWorker(id string) bool {
	return n.mode == modeSingle || strings.HasSuffix(id, n.workerSuffix())
}

// localWorkers is how many workers this node runs: processes, or the inline one.
func (n *Node) localWorkers() int {
	switch {
	case n.opts.Role == RoleGateway:
		return 0
	case n.opts.WorkerMode == WorkerModeInline:
		return 1
	}
	return n.opts.Workers
}

// workerProcesses is how many worker processes this node keeps running.
func (n *Node) workerProcesses() int {
	if n.opts.WorkerMode == WorkerModeInline {
		return 0
	}
	return n.localWorkers()
}

// localReadyWorkers are the ids of this node's ready workers, sorted.
func (n *Node) localReadyWorkers() []string {
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	ids := make([]string, 0, len(n.ready))
	for id := range n.ready {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// forgetSilentRemoteWorkers stops counting other nodes' workers silent for remoteWorkerSilence.
func (n *Node) forgetSilentRemoteWorkers(now time.Time) {
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	changed := false
	for id, at := range n.remoteSeen {
		if now.Sub(at) > remoteWorkerSilence {
			delete(n.remoteSeen, id)
			delete(n.loaded, id)
			changed = true
		}
	}
	if changed {
		n.workersChanged()
	}
}

// health answers /healthz: 200 when the node can serve, 503 with the reason when not.
func (n *Node) health() (int, any) {
	ready, reason := n.cluster.readiness()
	body := map[string]any{"status": "ok", "stack": n.stack.Name, "workers": n.readyWorkers()}
	if n.mode != modeSingle {
		body["node"], body["role"] = n.nodeID, n.opts.Role
	}
	if !ready {
		body["status"] = reason
		return http.StatusServiceUnavailable, body
	}
	return http.StatusOK, body
}

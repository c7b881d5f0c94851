package adminapi

import "time"

// TokenView describes an admin token without its secret.
type TokenView struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// TokenList answers GET /admin/v1/tokens, sorted by name.
type TokenList struct {
	Tokens []TokenView `json:"tokens"`
}

// TokenRequest is the body of POST /admin/v1/tokens.
type TokenRequest struct {
	Name string `json:"name"`
}

// TokenCreated answers POST /admin/v1/tokens: the token, shown this once.
type TokenCreated struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

// KeyView is an API key as the admin API shows it: never the key itself.
type KeyView struct {
	Name      string    `json:"name"`
	Plan      string    `json:"plan"`
	CreatedAt time.Time `json:"createdAt"`
}

// KeyList answers GET /admin/v1/keys.
type KeyList struct {
	Keys []KeyView `json:"keys"`
}

// KeyRequest is the body of POST /admin/v1/keys.
type KeyRequest struct {
	Name string `json:"name"`
	Plan string `json:"plan"`
}

// KeyCreated answers POST /admin/v1/keys: the key, shown this once.
type KeyCreated struct {
	Name      string    `json:"name"`
	Plan      string    `json:"plan"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"createdAt"`
}

// MaxConnectionMessage bounds the body of a post to a connection (128 KiB, API Gateway's message
// limit); the connection's API may set a lower limit.
const MaxConnectionMessage = 128 << 10

// ConnectionView is a WebSocket connection, as the admin API shows it.
type ConnectionView struct {
	ID           string    `json:"id"`
	API          string    `json:"api"`
	Stage        string    `json:"stage"`
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActiveAt time.Time `json:"lastActiveAt"`
	SourceIP     string    `json:"sourceIp"`
	UserAgent    string    `json:"userAgent"`
}

// ConnectionList answers GET /admin/v1/connections: the node's connections, oldest first.
type ConnectionList struct {
	Connections []ConnectionView `json:"connections"`
}

// The audit actions of function changes, whichever API made them.
const (
	ActionFunctionDeploy = "function.deploy"
	ActionFunctionDelete = "function.delete"
	ActionAliasSet       = "alias.set"
	ActionAliasDelete    = "alias.delete"
	ActionAPIApply       = "api.apply"
	ActionAPIDelete      = "api.delete"
	ActionQueueRedrive   = "queue.redrive"
)

// AuditEntry is one change made through the control plane: who (the token's name), when, from which
// address, what.
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Token is the name of the token the change was made with.
	Token string `json:"token"`
	// Address is the client's IP address.
	Address string `json:"address"`
	// Action is what was done, such as "function.deploy" (the admin server's Action constants).
	Action string `json:"action"`
	// Target is what changed: a token's name, "function:version" for a deploy, a function's name,
	// "function:alias" for an alias.
	Target string `json:"target"`
	// Detail says more, in a few words ("sha256 455e…, created").
	Detail string `json:"detail"`
}

// AuditList answers GET /admin/v1/audit, oldest first.
type AuditList struct {
	Entries []AuditEntry `json:"entries"`
}

// ErrorBody is the body of every answer that is not a 2xx.
type ErrorBody struct {
	Message string `json:"message"`
}

// ClusterStatus is the answer of GET /admin/v1/cluster: the nodes of the stack seen on the bus, and
// the health of the stored state's JetStream.
type ClusterStatus struct {
	// Node is the id of the node that answered.
	Node string `json:"node"`
	// Mode is "single" (one node, embedded bus), "cluster" (embedded servers forming a NATS cluster)
	// or "external" (an external NATS).
	Mode  string       `json:"mode"`
	Nodes []NodeStatus `json:"nodes"`
	// JetStream is the answering node's view of the stored state's JetStream.
	JetStream JetStreamStatus `json:"jetstream"`
}

// NodeStatus is one node, from the status it publishes on the bus twice a second.
type NodeStatus struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	// Gateway is the gateway's listen address; "" for a worker-only node.
	Gateway string `json:"gateway,omitempty"`
	Admin   string `json:"admin,omitempty"`
	// Workers are the node's ready worker processes.
	Workers []string `json:"workers"`
	// Migrating is set while the node copies a single-node store into the cluster: the other nodes
	// wait before they open the stack's stores.
	Migrating bool `json:"migrating,omitempty"`
	// Ready is what the node's /healthz says; Reason why not.
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	// Started is when the node started; Seen how long ago its last status came.
	Started time.Time `json:"started"`
	SeenMS  int64     `json:"seenMs"`
}

// JetStreamStatus describes the clustered JetStream's meta group as one node sees it.
type JetStreamStatus struct {
	// Reachable is set when the node can read and write stored state.
	Reachable bool `json:"reachable"`
	// Leader is the meta group's leader; "" when there is none (no quorum).
	Leader string `json:"leader,omitempty"`
	// Size is the number of servers the meta group knows; Peers are the others.
	Size  int             `json:"size,omitempty"`
	Peers []JetStreamPeer `json:"peers,omitempty"`
	// Streams are the stack's streams and buckets with their replicas.
	Streams []StreamReplicas `json:"streams,omitempty"`
}

// JetStreamPeer is another server of the meta group.
type JetStreamPeer struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	Offline bool   `json:"offline,omitempty"`
	// ActiveMS is how long ago it was last heard from; Lag how many entries it is behind.
	ActiveMS int64  `json:"activeMs"`
	Lag      uint64 `json:"lag,omitempty"`
}

// StreamReplicas is one of the stack's streams, with its replicas and its group's leader.
type StreamReplicas struct {
	Name     string `json:"name"`
	Replicas int    `json:"replicas"`
	Leader   string `json:"leader,omitempty"`
}

package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/gateway"
	"gatehouse.dev/gatehouse/internal/sigv4"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// Environment variables that give `up` one access key pair for @connections, besides the stack
// file's.
const (
	envAccessKeyID     = "GATEHOUSE_ACCESS_KEY_ID"
	envSecretAccessKey = "GATEHOUSE_SECRET_ACCESS_KEY"
)

// openConnections opens this node's WebSocket connection records (clearing those a previous run
// left) and the router that performs @connections operations on any node's connections.
func (n *Node) openConnections() error {
	id, err := connections.NodeID(n.dataDir)
	if err != nil {
		return err
	}
	n.nodeID = id
	if n.conns, err = connections.Open(connections.Config{Dir: filepath.Join(n.dataDir, "connections"), Logger: n.log}); err != nil {
		return err
	}
	n.gwLocal = &gatewayLocal{}
	n.router = connections.NewRouter(n.gwBus, id, n.gwLocal)
	return nil
}

// accessKeys are the stack file's access keys and the pair in up's environment, if any.
func accessKeys(stack *spec.Stack) ([]sigv4.Credentials, error) {
	var keys []sigv4.Credentials
	for _, k := range stack.IAM.AccessKeys {
		keys = append(keys, sigv4.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret})
	}
	id, secret := os.Getenv(envAccessKeyID), os.Getenv(envSecretAccessKey)
	switch {
	case id != "" && secret != "":
		keys = append(keys, sigv4.Credentials{AccessKeyID: id, SecretAccessKey: secret})
	case id != "" || secret != "":
		return nil, fmt.Errorf("set both %s and %s, or neither", envAccessKeyID, envSecretAccessKey)
	}
	return keys, nil
}

// verifier checks @connections signatures with the stack's access keys (accessKeys, and the AWS API's
// made one) and the process runtimes' functionCredentials.
func verifier(stack *spec.Stack, keys []sigv4.Credentials, functions sigv4.Credentials) (*sigv4.Verifier, error) {
	if len(keys) == 0 {
		for name, a := range stack.APIs {
			for _, r := range a.Routes {
				if r.Authorization.Type == spec.AuthIAM {
					return nil, fmt.Errorf("%s: the route is authorized with iam, but the stack has no access keys: add them to the iam section, or set %s and %s",
						stackfile.Where(stack.File, r.Line, r.Column, fmt.Sprintf("apis.%s.routes[%q]", name, r.Key)), envAccessKeyID, envSecretAccessKey)
				}
			}
		}
	}
	return sigv4.New(sigv4.Config{Keys: append(keys, functions), Region: stack.IAM.Region})
}

// gatewayLocal is the gateway's own side of @connections, for the router: the gateway is made after
// the router, which it is given.
type gatewayLocal struct{ gw *gateway.Server }

func (l *gatewayLocal) Post(ctx context.Context, id string, data []byte) error {
	return l.gw.PostToConnection(ctx, id, data)
}

func (l *gatewayLocal) Get(ctx context.Context, id string) (connections.Record, error) {
	return l.gw.GetConnection(ctx, id)
}

func (l *gatewayLocal) Delete(ctx context.Context, id string) error {
	return l.gw.DeleteConnection(ctx, id)
}

func (l *gatewayLocal) Broadcast(ctx context.Context, ids []string, data []byte) []string {
	return l.gw.BroadcastToConnections(ctx, ids, data)
}

// adminConnections is what the admin API's connection endpoints work with: this node's connections
// listed by the gateway, and operations on any node's connection through the router.
type adminConnections struct {
	*connections.Router // Post, Get, Delete
	gw                  *gateway.Server
	cluster             *clusterState
	log                 *slog.Logger
}

// List lists the connections of every node of the stack (those heard from lately; one that does
// not answer is left out and logged).
func (a adminConnections) List(api string) []connections.Record {
	ctx, cancel := context.WithTimeout(context.Background(), 2*connections.NodeAnswerTimeout)
	defer cancel()
	var nodes []string
	if a.cluster != nil {
		for _, n := range a.cluster.seen(time.Now()) {
			if n.SeenMS < nodeSilence.Milliseconds() {
				nodes = append(nodes, n.ID)
			}
		}
	}
	recs, err := a.Router.List(ctx, api, nodes)
	if err != nil && a.log != nil {
		a.log.Warn("listing connections", "err", err)
	}
	return recs
}

// List lists this node's sockets' records: its side of a cluster-wide list.
func (l *gatewayLocal) List(api string) []connections.Record {
	if l.gw == nil {
		return nil
	}
	return l.gw.ListConnections(api)
}

// usagePlanNames lists the stack's usage plans, sorted.
func usagePlanNames(stack *spec.Stack) []string {
	names := make([]string, 0, len(stack.UsagePlans))
	for name := range stack.UsagePlans {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

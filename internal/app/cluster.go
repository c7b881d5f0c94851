package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"gatehouse.dev/gatehouse/internal/jsopen"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/tlsconf"
)

// Roles of a node (--role).
const (
	// RoleAll serves HTTP and WebSockets and runs workers: the default.
	RoleAll = "all"
	// RoleGateway serves HTTP and WebSockets and dispatches to the cluster's workers; it runs none.
	RoleGateway = "gateway"
	// RoleWorker runs workers for the cluster's gateways; it serves no gateway listener.
	RoleWorker = "worker"
)

// Modes of a node's bus.
const (
	modeSingle   = "single"
	modeCluster  = "cluster"
	modeExternal = "external"
)

// envClusterToken holds a cluster's join token, as --cluster-token-file does.
const envClusterToken = "GATEHOUSE_CLUSTER_TOKEN"

// clusterFile, in the data directory, holds the cluster's secrets once the node has them (JSON, mode
// 0600): what `gatehouse cluster token` prints, so that a node restarts without its token.
const clusterFile = "cluster.json"

// clusterTokenPrefix starts every join token; the version lets the format change.
const clusterTokenPrefix = "ghcluster1."

// clusterSecrets are what every node of a cluster shares, carried by the join token.
type clusterSecrets struct {
	Version int    `json:"version"`
	Cluster string `json:"cluster"`
	// RouteUser and RoutePassword authenticate the NATS routes between nodes.
	RouteUser     string `json:"routeUser"`
	RoutePassword string `json:"routePassword"`
	// SecretKey (hex) seals secret environment values and derives functions' credentials: every node
	// needs the same one.
	SecretKey string `json:"secretKey"`
	// AdminToken is the cluster's first admin token, valid on every node.
	AdminToken string `json:"adminToken"`
	// AWSKeyID and AWSSecret are the AWS API's access key, the same on every node.
	AWSKeyID  string `json:"awsKeyId,omitempty"`
	AWSSecret string `json:"awsSecret,omitempty"`
	// RouteCACert and RouteCAKey (PEM) are the cluster's route certificate authority: each node
	// issues itself a route certificate from it, and accepts only peers whose certificate it signed.
	RouteCACert string `json:"routeCaCert,omitempty"`
	RouteCAKey  string `json:"routeCaKey,omitempty"`
}

func (s *clusterSecrets) validate() error {
	switch {
	case s.Version != 1:
		return fmt.Errorf("cluster token: version %d; this Gatehouse reads version 1", s.Version)
	case bus.ValidToken(s.Cluster) != nil:
		return errors.New("cluster token: no valid cluster name in it")
	case s.RouteUser == "" || s.RoutePassword == "":
		return errors.New("cluster token: no route credentials in it")
	case len(s.AdminToken) < 40:
		return errors.New("cluster token: no admin token in it")
	}
	if key, err := hex.DecodeString(s.SecretKey); err != nil || len(key) != 32 {
		return errors.New("cluster token: no valid secret key in it")
	}
	return nil
}

// encodeClusterToken is the join token of s: never printed but by `gatehouse cluster token`.
func encodeClusterToken(s *clusterSecrets) string {
	b, _ := json.Marshal(s)
	return clusterTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

func decodeClusterToken(token string) (*clusterSecrets, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), clusterTokenPrefix)
	if !ok {
		return nil, fmt.Errorf("cluster token: does not start with %q: make one with `gatehouse cluster token`", clusterTokenPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, errors.New("cluster token: damaged (not base64url): copy it again")
	}
	var s clusterSecrets
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, errors.New("cluster token: damaged (not JSON): copy it again")
	}
	return &s, s.validate()
}

// readClusterFile reads the data directory's cluster secrets; os.ErrNotExist when it has none.
func readClusterFile(dataDir string) (*clusterSecrets, error) {
	path := filepath.Join(dataDir, clusterFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s clusterSecrets
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

func writePrivateFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// makeClusterSecrets returns the data directory's cluster secrets, making them the first time (from
// its secret key, admin token and AWS key where it has them, new ones where not).
func makeClusterSecrets(dataDir, cluster string) (*clusterSecrets, error) {
	if err := bus.ValidToken(cluster); err != nil {
		return nil, fmt.Errorf("cluster name: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	s, err := readClusterFile(dataDir)
	if err == nil {
		if s.Cluster != cluster {
			return nil, fmt.Errorf("%s belongs to cluster %q, not %q", dataDir, s.Cluster, cluster)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := ensureSecretKey(dataDir)
	if err != nil {
		return nil, err
	}
	aws, _, err := ensureAWSKey(dataDir)
	if err != nil {
		return nil, err
	}
	admin, err := os.ReadFile(adminapi.TokenPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 32)
		rand.Read(b)
		admin = []byte("gh.admin." + base64.RawURLEncoding.EncodeToString(b))
	} else if err != nil {
		return nil, err
	}
	pw := make([]byte, 24)
	rand.Read(pw)
	caCert, caKey, err := tlsconf.NewRouteCA(cluster)
	if err != nil {
		return nil, fmt.Errorf("route certificate authority: %w", err)
	}
	s = &clusterSecrets{Version: 1, Cluster: cluster, RouteUser: "route", RoutePassword: base64.RawURLEncoding.EncodeToString(pw),
		SecretKey: hex.EncodeToString(key), AdminToken: strings.TrimSpace(string(admin)), AWSKeyID: aws.AccessKeyID, AWSSecret: aws.SecretAccessKey,
		RouteCACert: string(caCert), RouteCAKey: string(caKey)}
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := writePrivateFile(filepath.Join(dataDir, clusterFile), b); err != nil {
		return nil, err
	}
	return s, nil
}

// loadClusterSecrets finds the cluster's secrets for a node joining cluster: the token in tokenFile,
// or in $GATEHOUSE_CLUSTER_TOKEN, or those the data directory kept from an earlier start.
func loadClusterSecrets(dataDir, cluster, tokenFile string) (*clusterSecrets, error) {
	token := os.Getenv(envClusterToken)
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--cluster-token-file: %w", err)
		}
		token = string(b)
	}
	var s *clusterSecrets
	var err error
	if token != "" {
		s, err = decodeClusterToken(token)
	} else if s, err = readClusterFile(dataDir); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("joining cluster %q needs its token: run `gatehouse cluster token --cluster %s --data DIR` once, on one machine, and give every node its output with --cluster-token-file FILE (or $%s)", cluster, cluster, envClusterToken)
	}
	if err != nil {
		return nil, err
	}
	if cluster != "" && s.Cluster != cluster {
		return nil, fmt.Errorf("the cluster token is cluster %q's, not %q's", s.Cluster, cluster)
	}
	return s, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// secretKeyIDKey, in the stack's state bucket, records which secret key the stack's secrets are
// sealed with (the first 16 hex digits of its SHA-256): a node with another key would deploy
// versions that other nodes cannot open, and fail to open theirs.
const secretKeyIDKey = "secret-key-id"

// checkSecretKey records the node's secret key as the stack's on first use, and refuses to start a
// node whose key is another.
func (n *Node) checkSecretKey(ctx context.Context) error {
	js, err := n.jetStream()
	if err != nil {
		return err
	}
	kv, err := jsopen.KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: stateBucket(n.stack.Name),
		Description: "Gatehouse records of stack " + n.stack.Name, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(n.secretKey)
	id := hex.EncodeToString(sum[:8])
	if _, err := kv.Create(ctx, secretKeyIDKey, []byte(id)); err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
		return err
	}
	e, err := kv.Get(ctx, secretKeyIDKey)
	if err != nil {
		return err
	}
	if string(e.Value()) != id {
		return fmt.Errorf("this node's secret key (%s in %s) is not the one stack %q's secrets are sealed with: every node of a stack needs the same one; start this node with the cluster's token (--cluster-token-file, from `gatehouse cluster token` on a node that has the stack's key)",
			id, filepath.Join(n.dataDir, secretKeyFile), n.stack.Name)
	}
	return nil
}

// installClusterSecrets makes the data directory hold s: its secret key, admin token and AWS key
// (refusing a different secret key, which would make stored secrets unreadable), and s itself.
func installClusterSecrets(dataDir string, s *clusterSecrets) error {
	want, _ := hex.DecodeString(s.SecretKey)
	have, err := readSecretKey(dataDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := writePrivateFile(filepath.Join(dataDir, secretKeyFile), []byte(s.SecretKey+"\n")); err != nil {
			return fmt.Errorf("secret key: %w", err)
		}
	case err != nil:
		return err
	case hex.EncodeToString(have) != hex.EncodeToString(want):
		return fmt.Errorf("the data directory %s has a secret key other than cluster %q's: a node joins with an empty data directory, or the one it had in this cluster", dataDir, s.Cluster)
	}
	if _, err := os.Stat(adminapi.TokenPath(dataDir)); errors.Is(err, os.ErrNotExist) {
		if err := writePrivateFile(adminapi.TokenPath(dataDir), []byte(s.AdminToken+"\n")); err != nil {
			return fmt.Errorf("admin token: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, awsKeyFile)); errors.Is(err, os.ErrNotExist) && s.AWSKeyID != "" {
		b, _ := json.Marshal(struct{ AccessKeyID, SecretAccessKey string }{s.AWSKeyID, s.AWSSecret})
		if err := writePrivateFile(filepath.Join(dataDir, awsKeyFile), b); err != nil {
			return fmt.Errorf("AWS access key: %w", err)
		}
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	return writePrivateFile(filepath.Join(dataDir, clusterFile), b)
}

// setAsideSingleNodeStore, with --migrate-store, moves a store written by a single node out of the
// way (to jetstream.single-<time>) so that the node joins the cluster on an empty one, and returns
// where it went; "" when there is nothing to migrate.
func (n *Node) setAsideSingleNodeStore() (string, error) {
	if !n.opts.MigrateStore {
		return "", nil
	}
	if n.mode != modeCluster {
		return "", errors.New("--migrate-store moves a single node's store into a cluster: it needs --cluster")
	}
	store := filepath.Join(n.dataDir, "jetstream")
	single, err := bus.SingleNodeStore(store)
	if err != nil || !single {
		if err == nil {
			fmt.Fprintln(n.opts.Stdout, "--migrate-store: the store holds no single-node state; nothing to migrate")
		}
		return "", err
	}
	aside := store + ".single-" + time.Now().UTC().Format("20060102T150405")
	if err := os.Rename(store, aside); err != nil {
		return "", fmt.Errorf("--migrate-store: setting the single-node store aside: %w", err)
	}
	if err := os.MkdirAll(store, 0o700); err != nil {
		return "", err
	}
	fmt.Fprintf(n.opts.Stdout, "--migrate-store: the single-node store is set aside in %s; its state is copied into the cluster once it has a quorum\n", aside)
	return aside, nil
}

// migrateStore copies the stack's streams and buckets from the single-node store at dir, served by
// a temporary embedded server of its own, into the cluster. A stream the cluster already has with
// messages stops the migration: it never merges.
func (n *Node) migrateStore(ctx context.Context, dir string) error {
	old, err := bus.NewServer(bus.ServerConfig{Stack: n.stack.Name, StoreDir: dir})
	if err != nil {
		return err
	}
	if err := old.Start(); err != nil {
		return fmt.Errorf("--migrate-store: opening the single-node store %s: %w", dir, err)
	}
	defer old.Shutdown()
	c, err := bus.Connect(bus.ClientConfig{URL: old.ClientURL(), Credentials: old.Credentials(bus.RoleControl), Stack: n.stack.Name, Name: "migrate"})
	if err != nil {
		return err
	}
	defer c.Close()
	from, err := jetstream.New(c.Conn())
	if err != nil {
		return err
	}
	to, err := n.jetStream()
	if err != nil {
		return err
	}
	start := time.Now()
	copied, msgs, err := jsopen.CopyStreams(ctx, from, to, n.ownsStream)
	if err != nil {
		return fmt.Errorf("--migrate-store: %w (copied %v; the single-node store is still in %s: move it back to jetstream/ to run single-node again)", err, copied, dir)
	}
	fmt.Fprintf(n.opts.Stdout, "--migrate-store: copied %d streams and buckets (%d messages) into the cluster in %s; %s may be deleted once the cluster serves\n",
		len(copied), msgs, time.Since(start).Round(time.Millisecond), dir)
	return nil
}

// sayMigrating publishes, until the returned function is called, that this node is migrating its
// store into the cluster.
func (n *Node) sayMigrating() func() {
	done := make(chan struct{})
	st, _ := json.Marshal(adminapi.NodeStatus{ID: n.nodeID, Role: n.opts.Role, Migrating: true, Reason: "migrating its store into the cluster"})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			n.control.Conn().Publish(n.control.Subjects().NodeStatus(), st)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}

// migrationListen is how long a node joining a cluster listens for a node migrating its store before
// it opens the stack's stores.
const migrationListen = 1500 * time.Millisecond

// waitForMigrations waits while another node says it is migrating a single-node store into the
// cluster: the stack's stores must be the migrated ones, not new ones made meanwhile.
func (n *Node) waitForMigrations(ctx context.Context) error {
	var mu sync.Mutex
	seen := map[string]time.Time{}
	sub, err := n.control.Conn().Subscribe(n.control.Subjects().NodeStatus(), func(m *nats.Msg) {
		var st adminapi.NodeStatus
		if json.Unmarshal(m.Data, &st) == nil && st.ID != n.nodeID {
			mu.Lock()
			if st.Migrating {
				seen[st.ID] = time.Now()
			} else {
				delete(seen, st.ID)
			}
			mu.Unlock()
		}
	})
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	defer sub.Unsubscribe()
	start := time.Now()
	said := false
	for {
		mu.Lock()
		var migrating []string
		for id, at := range seen {
			if time.Since(at) < time.Second {
				migrating = append(migrating, id)
			}
		}
		mu.Unlock()
		switch {
		case len(migrating) > 0 && !said:
			said = true
			fmt.Fprintf(n.opts.Stdout, "waiting for node %s to migrate its store into the cluster …\n", strings.Join(migrating, ", "))
		case len(migrating) == 0 && time.Since(start) >= migrationListen:
			return nil
		case time.Since(start) > n.opts.ReadyTimeout+migrationListen:
			return fmt.Errorf("node %s is still migrating its store after %s", strings.Join(migrating, ", "), n.opts.ReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// printNATSPermissions prints, in nats-server's configuration syntax, the permissions of a stack's
// node user (the node's control and gateway connections) and worker user on an external NATS: what
// the embedded bus gives its own users.
func printNATSPermissions(w io.Writer, stack string) error {
	perms, err := bus.Permissions(stack, workerReads(stack), workerPublishes(stack))
	if err != nil {
		return fmt.Errorf("--stack: %w", err)
	}
	node := mergePermissions(perms[bus.RoleControl], perms[bus.RoleGateway])
	fmt.Fprintf(w, "# Gatehouse stack %q on an external NATS: the users of `gatehouse up --nats URL --nats-creds NODE.creds\n", stack)
	fmt.Fprintf(w, "# --nats-worker-creds WORKER.creds`. Workers run guest code: keep them on the worker user.\n")
	writePermissions(w, "gatehouse_node_permissions", node)
	writePermissions(w, "gatehouse_worker_permissions", perms[bus.RoleWorker])
	fmt.Fprintf(w, "# authorization { users = [\n#   { user: gh_node, password: \"…\", permissions: $gatehouse_node_permissions }\n#   { user: gh_worker, password: \"…\", permissions: $gatehouse_worker_permissions }\n# ] }\n")
	return nil
}

// mergePermissions allows what either a or b allows; responses as b's.
func mergePermissions(a, b *server.Permissions) *server.Permissions {
	union := func(x, y []string) []string {
		out := slices.Clone(x)
		for _, s := range y {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: union(a.Publish.Allow, b.Publish.Allow)},
		Subscribe: &server.SubjectPermission{Allow: union(a.Subscribe.Allow, b.Subscribe.Allow)},
		Response:  b.Response,
	}
}

func writePermissions(w io.Writer, name string, p *server.Permissions) {
	list := func(subjects []string) string {
		q := make([]string, len(subjects))
		for i, s := range subjects {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	fmt.Fprintf(w, "%s = {\n  publish: { allow: %s }\n  subscribe: { allow: %s }\n", name, list(p.Publish.Allow), list(p.Subscribe.Allow))
	if p.Response != nil {
		fmt.Fprintf(w, "  allow_responses: { max: %d, expires: %q }\n", p.Response.MaxMsgs, p.Response.Expires.String())
	}
	fmt.Fprintln(w, "}")
}

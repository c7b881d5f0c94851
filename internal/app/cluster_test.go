package app

import (
	"encoding/json"
	"slices"

	"github.com/nats-io/nats-server/v2/server"

	"gatehouse.dev/gatehouse/internal/bus"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// The join token carries a data directory's secrets to another: a node that installs it has the same
// secret key, admin token and AWS key; one whose data directory has another secret key is refused.
func TestClusterToken(t *testing.T) {
	first := t.TempDir()
	s, err := makeClusterSecrets(first, "prod")
	if err != nil {
		t.Fatal(err)
	}
	again, err := makeClusterSecrets(first, "prod")
	if err != nil || *again != *s {
		t.Fatalf("a second token from the same data directory differs: %+v, %v", again, err)
	}
	if _, err := makeClusterSecrets(first, "other"); err == nil || !strings.Contains(err.Error(), `belongs to cluster "prod"`) {
		t.Fatalf("a token for another cluster from the same data directory: %v", err)
	}
	token := encodeClusterToken(s)
	if strings.Contains(token, s.RoutePassword) || strings.Contains(token, s.AdminToken) {
		t.Fatal("the token shows its secrets in the clear")
	}

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	joining := t.TempDir()
	got, err := loadClusterSecrets(joining, "prod", tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := installClusterSecrets(joining, got); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{secretKeyFile, awsKeyFile, adminapi.TokenFile} {
		a, _ := os.ReadFile(filepath.Join(first, f))
		b, err := os.ReadFile(filepath.Join(joining, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == adminapi.TokenFile {
			a = []byte(s.AdminToken + "\n")
		}
		if string(a) != string(b) && strings.TrimSpace(string(a)) != strings.TrimSpace(string(b)) {
			t.Fatalf("%s differs between the nodes", f)
		}
		if st, _ := os.Stat(filepath.Join(joining, f)); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	// Restarting without the token: the data directory kept it.
	if kept, err := loadClusterSecrets(joining, "prod", ""); err != nil || *kept != *s {
		t.Fatalf("restart without the token: %+v, %v", kept, err)
	}

	for _, tc := range []struct {
		name, dir, cluster, token, want string
	}{
		{"wrong cluster", t.TempDir(), "staging", token, `cluster "prod"'s, not "staging"'s`},
		{"damaged", t.TempDir(), "prod", token[:len(token)-7] + "!!", "damaged"},
		{"not a token", t.TempDir(), "prod", "hello", "does not start with"},
		{"none", t.TempDir(), "prod", "", "needs its token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := ""
			if tc.token != "" {
				file = filepath.Join(t.TempDir(), "token")
				os.WriteFile(file, []byte(tc.token), 0o600)
			}
			if _, err := loadClusterSecrets(tc.dir, tc.cluster, file); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}

	other := t.TempDir()
	if _, err := ensureSecretKey(other); err != nil {
		t.Fatal(err)
	}
	if err := installClusterSecrets(other, s); err == nil || !strings.Contains(err.Error(), "other than cluster") {
		t.Fatalf("joining with another secret key: %v, want refused", err)
	}
}

func TestClusterOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Cluster: "c"}, "needs --cluster-listen"},
		{Options{ClusterListen: "127.0.0.1:6222"}, "need --cluster NAME"},
		{Options{Role: RoleGateway}, "needs other nodes"},
		{Options{Role: "boss"}, `--role "boss"`},
		{Options{NATSURL: "nats://x", Cluster: "c"}, "are for embedded servers"},
		{Options{NATSCreds: "f"}, "need --nats URL"},
		{Options{NATSWorkerCreds: "f"}, "need --nats URL"},
		{Options{Cluster: "c", ClusterListen: "127.0.0.1:6222", Join: []string{"127.0.0.1:6223"}, Role: RoleWorker}, ""},
		{Options{NATSURL: "nats://127.0.0.1:4222", Role: RoleGateway}, ""},
	} {
		tc.opts.defaults()
		err := tc.opts.checkCluster()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.opts, err, tc.want)
		}
	}
}

// A single node answers the cluster status too: itself, ready with its workers, and its streams
// with one replica each; without a token it is refused.
func TestClusterStatusSingleNode(t *testing.T) {
	n := sharedNode(t)
	if status, _, _ := adminDo(t, n, "GET", "/admin/v1/cluster", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("cluster status without a token: %d, want 401", status)
	}
	status, _, body := adminDo(t, n, "GET", "/admin/v1/cluster", adminToken(t, n), "")
	var st adminapi.ClusterStatus
	if status != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("cluster status: %d %s", status, body)
	}
	if st.Mode != modeSingle || len(st.Nodes) != 1 || !st.Nodes[0].Ready || len(st.Nodes[0].Workers) != 2 || !st.JetStream.Reachable {
		t.Fatalf("cluster status of a single node: %s", body)
	}
	names := map[string]int{}
	for _, s := range st.JetStream.Streams {
		names[s.Name] = s.Replicas
	}
	for _, want := range []string{"KV_gh_e2e_functions", "KV_gh_e2e_state", "gh_e2e_logs"} {
		if r, ok := names[want]; !ok || r != 1 {
			t.Errorf("stream %s: replicas %d (listed %v); want listed with 1", want, r, ok)
		}
	}
}

// The permissions printed for an external NATS load into nats-server as they are, and give its
// users what the embedded bus gives its own.
func TestNATSPermissionsLoad(t *testing.T) {
	var out strings.Builder
	if err := printNATSPermissions(&out, "shop"); err != nil {
		t.Fatal(err)
	}
	conf := out.String() + `
authorization { users = [
  { user: gh_node, password: "n", permissions: $gatehouse_node_permissions }
  { user: gh_worker, password: "w", permissions: $gatehouse_worker_permissions }
] }
`
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the printed permissions: %v\n%s", err, conf)
	}
	want, err := bus.Permissions("shop", workerReads("shop"), workerPublishes("shop"))
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]*server.Permissions{}
	for _, u := range opts.Users {
		users[u.Username] = u.Permissions
	}
	w := users["gh_worker"]
	if w == nil || !slices.Equal(w.Publish.Allow, want[bus.RoleWorker].Publish.Allow) ||
		!slices.Equal(w.Subscribe.Allow, want[bus.RoleWorker].Subscribe.Allow) || w.Response == nil || w.Response.MaxMsgs != 1 {
		t.Fatalf("worker user as loaded: %+v", w)
	}
	node := users["gh_node"]
	for _, s := range append(want[bus.RoleControl].Publish.Allow, want[bus.RoleGateway].Publish.Allow...) {
		if node == nil || !slices.Contains(node.Publish.Allow, s) {
			t.Fatalf("node user may not publish to %s: %+v", s, node)
		}
	}
}

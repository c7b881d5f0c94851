package clustertest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMigrateStore moves a single node's stored state into a new cluster of three as docs/cluster.md
// says: the single node stops, the join token is made from its data directory, it starts again with
// the cluster flags and --migrate-store, then the other two. What it stored (a token made while it
// ran alone, its functions' versions) is the cluster's, on every node, with three replicas.
func TestMigrateStore(t *testing.T) {
	skipShort(t)
	single := newNode(t, nodeConfig{name: "mig-single"})
	var nodes []*node
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range append([]*node{single}, nodes...) {
				n.dumpLogs(t)
			}
		}
		for _, n := range nodes {
			n.kill(t)
		}
		single.kill(t)
	})
	single.start(t)
	single.waitUp(t, startBound)
	out := gatehouse(t, time.Minute, "tokens", "create", "made-alone", "--data", single.dir)
	alone := ""
	for _, l := range lines(out) {
		if f := strings.TrimSpace(l); strings.HasPrefix(f, "gh.made-alone.") {
			alone = f
		}
	}
	if alone == "" {
		t.Fatalf("gatehouse tokens create on the single node: %q", out)
	}
	single.terminate(t, time.Minute)

	token := filepath.Join(workRoot, "mig.token")
	if err := os.WriteFile(token, []byte(gatehouse(t, time.Minute, "cluster", "token", "--data", single.dir, "--cluster", "mig")), 0o600); err != nil {
		t.Fatal(err)
	}
	join := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	for i := range 3 {
		cfg := nodeConfig{name: fmt.Sprintf("mig-n%d", i+1), cluster: "mig", route: join[i], join: join, token: token}
		if i == 0 {
			cfg.dir = single.dir // the single node itself, with the cluster's flags
		}
		n := newNode(t, cfg)
		if i == 0 {
			n.args = append(n.args, "--migrate-store")
		}
		nodes = append(nodes, n)
	}
	nodes[0].start(t)
	nodes[0].waitOutput(t, "--migrate-store: the single-node store is set aside", startBound)
	for _, n := range nodes[1:] {
		n.start(t)
	}
	for _, n := range nodes {
		n.waitUp(t, startBound)
	}
	if out := nodes[0].output(); !strings.Contains(out, "--migrate-store: copied") {
		t.Fatalf("%s does not say it copied its store:\n%s", nodes[0].name, out)
	}
	for _, l := range lines(nodes[0].output()) {
		if strings.HasPrefix(l, "--migrate-store: copied") {
			t.Log(l)
		}
	}
	for _, n := range nodes {
		// The token made while the node ran alone works on every node of the cluster. While the
		// bucket's replicas grow to three its stream may be between leaders for longer than a
		// node waits for it (the node answers 503 then), so the token is allowed a moment.
		var status int
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			req, _ := http.NewRequest("GET", "http://"+n.admin+"/admin/v1/tokens", nil)
			req.Header.Set("Authorization", "Bearer "+alone)
			var resp *http.Response
			if resp, err = http.DefaultClient.Do(req); err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			if (err == nil && status == http.StatusOK) || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || status != http.StatusOK {
			t.Fatalf("the token made on the single node, on %s, 10 s after it was up: %d %v", n.name, status, err)
		}
		// The stack file's functions were not deployed again: still version 1.
		if status, p, err := getProbe(n); err != nil || status != http.StatusOK || p.Version != "1" {
			t.Errorf("%s: GET /probe: %d %+v %v; want version 1, as the single node had it", n.name, status, p, err)
		}
	}
	st := clusterStatus(t, nodes[2])
	for _, s := range st.JetStream.Streams {
		if s.Replicas != 3 {
			t.Errorf("after the migration, %s has %d replicas, want 3", s.Name, s.Replicas)
		}
	}
	if len(st.JetStream.Streams) < 8 {
		t.Errorf("after the migration the cluster lists %d streams: %+v", len(st.JetStream.Streams), st.JetStream.Streams)
	}
}

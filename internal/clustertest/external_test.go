package clustertest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startNATSCluster runs a NATS cluster of size servers with JetStream in the test process, on
// loopback, without authentication, and returns their client URLs. They shut down when the test ends.
func startNATSCluster(t testing.TB, size int) []string {
	t.Helper()
	var routes []string
	for range size {
		routes = append(routes, "nats-route://"+freeAddr(t))
	}
	var urls []string
	for i := range size {
		route, err := net.ResolveTCPAddr("tcp", strings.TrimPrefix(routes[i], "nats-route://"))
		if err != nil {
			t.Fatal(err)
		}
		store, err := os.MkdirTemp(workRoot, "nats-")
		if err != nil {
			t.Fatal(err)
		}
		opts := &server.Options{
			ServerName: "ext" + strconv.Itoa(i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			NoLog:      true,
			NoSigs:     true,
			JetStream:  true,
			StoreDir:   store,
			Cluster:    server.ClusterOpts{Name: "external", Host: "127.0.0.1", Port: route.Port},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("NATS server %d did not start", i+1)
		}
		urls = append(urls, s.ClientURL())
	}
	return urls
}

// TestExternalNATS runs two nodes on an external NATS cluster of three servers (--nats with every
// server's URL, no --cluster): both serve, the second does not deploy the stack file's functions
// again, and a deploy through either is served by the other.
func TestExternalNATS(t *testing.T) {
	skipShort(t)
	urls := startNATSCluster(t, 3)
	a := newNode(t, nodeConfig{name: "ext-a", nats: strings.Join(urls, ",")})
	// The other node lists the servers in another order.
	reversed := []string{urls[2], urls[1], urls[0]}
	b := newNode(t, nodeConfig{name: "ext-b", nats: strings.Join(reversed, ",")})
	nodes := []*node{a, b}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				n.dumpLogs(t)
			}
		}
		for _, n := range nodes {
			n.kill(t)
		}
	})
	// The nodes of a stack share its secret key and admin token through the join token, made once.
	token := filepath.Join(workRoot, "ext-token")
	if err := os.WriteFile(token, []byte(gatehouse(t, 30*time.Second, "cluster", "token", "--data", a.dir, "--cluster", "ext")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		n.args = append(n.args, "--cluster-token-file", token)
	}

	start := time.Now()
	a.start(t)
	a.waitUp(t, startBound)
	b.start(t)
	b.waitUp(t, startBound)
	t.Logf("two nodes on an external NATS cluster up in %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(b.output(), "external NATS") {
		t.Errorf("%s does not say it uses the external NATS:\n%s", b.name, b.output())
	}

	for _, n := range nodes {
		if status, body, err := get(n.url("/hello"), 10*time.Second); err != nil || status != http.StatusOK {
			t.Fatalf("%s: GET /hello: %d %s %v", n.name, status, body, err)
		}
		// The stack file's functions were deployed once, by the first node.
		if status, p, err := getProbe(n); err != nil || status != http.StatusOK || p.Version != "1" || p.Color != "stack" {
			t.Errorf("%s: GET /probe: %d %+v %v, want the stack file's version 1", n.name, status, p, err)
		}
	}
	waitFor(t, "both nodes listed ready", time.Minute, 500*time.Millisecond, func() (bool, string) {
		st := clusterStatus(t, a)
		ready := 0
		for _, ns := range st.Nodes {
			if ns.Ready && ns.SeenMS < 5000 {
				ready++
			}
		}
		b, _ := json.Marshal(st)
		return st.Mode == "external" && ready == 2 && st.JetStream.Reachable, string(b)
	})

	t.Run("DeployOnAServedByB", func(t *testing.T) {
		testDeploy(t, a, []*node{b}, false)
	})
	t.Run("DeployOnBServedByA", func(t *testing.T) {
		// b's admin API takes the stack's admin token, which only the node that made it holds in its
		// data directory: given explicitly.
		dir := filepath.Join(workRoot, "deploy-"+b.name, "probe")
		copyDir(t, filepath.Join("testdata", "functions", "probe"), dir)
		manifest := "version: 1\nname: probe\ntimeout: 60s\nenvironment:\n  COLOR: deployed-on-b\n"
		if err := os.WriteFile(filepath.Join(dir, "function.yaml"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		out := gatehouse(t, 3*time.Minute, "deploy", dir, "--data", b.dir, "--admin", "http://"+b.admin, "--token", a.adminToken(t))
		if !strings.Contains(out, "deployed probe version") {
			t.Fatalf("gatehouse deploy through %s: %q", b.name, out)
		}
		took := waitFor(t, a.name+" to serve the version deployed through "+b.name, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
			status, p, err := getProbe(a)
			return err == nil && status == http.StatusOK && p.Color == "deployed-on-b", fmt.Sprintf("%d %+v %v", status, p, err)
		})
		t.Logf("%s served the version deployed through %s %v after the deploy answered", a.name, b.name, took.Round(time.Millisecond))
	})
}

// TestExternalNATSSecrets: nodes on an external NATS share the stack's secret key through the join
// token. A node started without it, with a key of its own, refuses to start (it could neither open
// the versions deployed through the others nor make versions they can open); with the token, a
// version with a secret environment value deployed through one node is served by the other.
func TestExternalNATSSecrets(t *testing.T) {
	skipShort(t)
	urls := strings.Join(startNATSCluster(t, 3), ",")
	a := newNode(t, nodeConfig{name: "sec-a", nats: urls})
	b := newNode(t, nodeConfig{name: "sec-b", nats: urls})
	t.Cleanup(func() {
		if t.Failed() {
			a.dumpLogs(t)
			b.dumpLogs(t)
		}
		a.kill(t)
		b.kill(t)
	})
	a.start(t)
	a.waitUp(t, startBound)
	b.start(t)
	select {
	case <-b.exited():
	case <-time.After(startBound):
		t.Fatalf("%s, with a secret key of its own, still runs after %v; want it refused", b.name, startBound)
	}
	if msg := b.lastError(); !strings.Contains(msg, "secret key") || !strings.Contains(msg, "--cluster-token-file") {
		t.Fatalf("%s refused with %q; want a message about the secret key and the token", b.name, msg)
	}

	token := filepath.Join(workRoot, "sec-token")
	if err := os.WriteFile(token, []byte(gatehouse(t, 30*time.Second, "cluster", "token", "--data", a.dir, "--cluster", "ext")), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(b.dir, "secret.key")) // the key it made on its refused start
	b.args = append(b.args, "--cluster-token-file", token)
	b.start(t)
	b.waitUp(t, startBound)

	dir := filepath.Join(workRoot, "deploy-"+a.name, "probe")
	copyDir(t, filepath.Join("testdata", "functions", "probe"), dir)
	manifest := "version: 1\nname: probe\ntimeout: 60s\nenvironment:\n  COLOR: secret-color\nsecrets: [COLOR]\n"
	if err := os.WriteFile(filepath.Join(dir, "function.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	// b has the stack's admin token from the join token: deployed through b.
	gatehouse(t, 3*time.Minute, "deploy", dir, "--data", b.dir)
	for _, n := range []*node{a, b} {
		waitFor(t, n.name+" to serve the version with a secret", 10*time.Second, 50*time.Millisecond, func() (bool, string) {
			status, p, err := getProbe(n)
			return err == nil && status == http.StatusOK && p.Color == "secret-color", fmt.Sprintf("%d %+v %v", status, p, err)
		})
	}
}

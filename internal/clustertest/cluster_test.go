package clustertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/fasthttp/websocket"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// Bounds of the tests: coarse, far above what the nodes take on a loaded two-core machine (the
// measured times are logged), so that only a node that never gets there fails them.
const (
	// startBound is how long a node may take to start, its functions' builds included.
	startBound = 3 * time.Minute
	// formBound is how long a cluster may take to list every node ready, with every stream at its
	// replicas.
	formBound = 90 * time.Second
	// requestBound is the longest any request of a load run may take while a node is lost: far
	// below the probe route's 30 s integration timeout and its function's 60 s timeout, which an
	// invocation lost with its node must never wait for.
	requestBound = 10 * time.Second
)

// The @connections access key of testdata/stack.yaml.
const (
	accessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	secretAccessKey = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
)

// testCluster is the nodes of one embedded cluster.
type testCluster struct {
	name  string
	token string
	// join is every node's route listener, the --join of each.
	join  []string
	nodes []*node
}

// newCluster makes the nodes of an embedded cluster, one per role ("" is the default, all), and its
// join token, made from the first node's data directory as an operator would; it starts none. The
// nodes are killed when the test ends, and their output logged if it failed.
func newCluster(t testing.TB, name string, roles ...string) *testCluster {
	t.Helper()
	c := &testCluster{name: name}
	for range roles {
		c.join = append(c.join, freeAddr(t))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.nodes {
				n.dumpLogs(t)
			}
		}
		for _, n := range c.nodes {
			n.kill(t)
		}
	})
	c.token = filepath.Join(workRoot, name+".token")
	for i, role := range roles {
		n := newNode(t, nodeConfig{name: fmt.Sprintf("%s-n%d", name, i+1), cluster: name, route: c.join[i], join: c.join, role: role})
		n.args = append(n.args, "--cluster-token-file", c.token)
		c.nodes = append(c.nodes, n)
		if i == 0 {
			token := gatehouse(t, time.Minute, "cluster", "token", "--data", n.dir, "--cluster", name)
			if err := os.WriteFile(c.token, []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

// startCluster starts an embedded cluster of one node per role ("" is the default, all) and waits
// until every node serves and lists the others ready, with the stack's streams at their replicas.
// The first node starts alone, so that it builds the functions and the others find them built; the
// others start once it waits for a quorum.
//
// A node that exits while the cluster forms is started again, as the documented systemd unit
// (Restart=on-failure) and Kubernetes do, and the restart logged: a start that fails on a loaded
// machine must not fail the tests of what the cluster does once formed (TestClusterStartsTogether
// holds starting to its own account).
func startCluster(t testing.TB, name string, roles ...string) *testCluster {
	t.Helper()
	c := newCluster(t, name, roles...)
	start := time.Now()
	c.nodes[0].start(t)
	c.nodes[0].waitOutput(t, "waiting for the cluster's JetStream", startBound)
	built := time.Since(start)
	for _, n := range c.nodes[1:] {
		n.start(t)
	}
	// Every node that exits is started again (after the unit's RestartSec) while the others wait
	// for it: a node that needs a quorum cannot start while the others it needs are down.
	restarts := make([]int, len(c.nodes))
	exitedAt := make([]time.Time, len(c.nodes))
	deadline := time.Now().Add(2 * startBound) // room for a restart after a failed wait for a quorum
	for {
		waiting := 0
		for i, n := range c.nodes {
			if strings.Contains(n.output(), "Gatehouse is up") {
				continue
			}
			waiting++
			if n.running() {
				continue
			}
			switch {
			case exitedAt[i].IsZero():
				if restarts[i] == 3 {
					t.Fatalf("%s exited a fourth time before it was up: %s", n.name, n.lastError())
				}
				exitedAt[i] = time.Now()
				t.Logf("restarting, as Restart=on-failure would, a node that failed to start with the others: %s exited: %s", n.name, n.lastError())
			case time.Since(exitedAt[i]) >= 2*time.Second: // the unit's RestartSec
				exitedAt[i] = time.Time{}
				restarts[i]++
				n.start(t)
			}
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster's nodes were not all up within %v", 2*startBound)
		}
		time.Sleep(100 * time.Millisecond)
	}
	up := time.Since(start)
	c.waitFormed(t)
	t.Logf("cluster %s: first node built its functions in %v, every node up in %v, formed in %v", name,
		built.Round(time.Millisecond), up.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return c
}

// waitFormed waits until the last node's cluster status lists every node ready, a JetStream leader,
// and the stack's streams with the replicas the cluster's size asks for.
func (c *testCluster) waitFormed(t testing.TB) {
	t.Helper()
	wantReplicas := min(3, len(c.nodes))
	asked := c.nodes[len(c.nodes)-1]
	for _, n := range c.nodes {
		if n.running() {
			asked = n
		}
	}
	waitFor(t, "the cluster to form", formBound, 500*time.Millisecond, func() (bool, string) {
		st := clusterStatus(t, asked)
		b, _ := json.Marshal(st)
		ready := 0
		for _, ns := range st.Nodes {
			if ns.Ready && ns.SeenMS < 5000 {
				ready++
			}
		}
		if ready != len(c.nodes) || !st.JetStream.Reachable || st.JetStream.Leader == "" || len(st.JetStream.Streams) == 0 {
			return false, string(b)
		}
		for _, s := range st.JetStream.Streams {
			if s.Replicas != wantReplicas {
				return false, string(b)
			}
		}
		return true, ""
	})
}

// waitHealthy waits until every node's /healthz answers 200.
func (c *testCluster) waitHealthy(t testing.TB, bound time.Duration) {
	t.Helper()
	waitFor(t, "every node to be ready", bound, 250*time.Millisecond, func() (bool, string) {
		var states []string
		ok := true
		for _, n := range c.nodes {
			s := n.healthz()
			states = append(states, fmt.Sprintf("%s %d", n.name, s))
			ok = ok && s == http.StatusOK
		}
		return ok, strings.Join(states, ", ")
	})
}

// probeAnswer is what the probe function answers.
type probeAnswer struct {
	Version string `json:"version"`
	Color   string `json:"color"`
}

func getProbe(n *node) (int, probeAnswer, error) {
	status, body, err := get(n.url("/probe"), 10*time.Second)
	var a probeAnswer
	if err == nil && status == http.StatusOK {
		err = json.Unmarshal(body, &a)
	}
	return status, a, err
}

// TestCluster runs one three-node cluster through what its users see: deploys, WebSockets across
// nodes, a node lost under load, a node cut off from the quorum and a rolling restart. The subtests
// run in order on the same cluster; each starts by waiting for every node to be ready.
func TestCluster(t *testing.T) {
	skipShort(t)
	c := startCluster(t, "ct", "", "", "")
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	// What `gatehouse cluster status` prints, as an operator reads it.
	out := gatehouse(t, 30*time.Second, "cluster", "status", "--data", n3.dir)
	for _, n := range c.nodes {
		if !strings.Contains(out, n.nodeID(t)) {
			t.Errorf("cluster status does not list %s (%s):\n%s", n.name, n.nodeID(t), out)
		}
	}
	for _, want := range []string{"mode cluster", "leader"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster status does not say %q:\n%s", want, out)
		}
	}

	t.Run("DeployOnOneServedByAnother", func(t *testing.T) {
		c.waitHealthy(t, time.Minute)
		testDeploy(t, n1, []*node{n3, n2}, true)
	})
	t.Run("WebSocketsAcrossNodes", func(t *testing.T) {
		c.waitHealthy(t, time.Minute)
		testWebSockets(t, n1, n2, n3)
	})
	t.Run("AsyncAcrossNodes", func(t *testing.T) {
		c.waitHealthy(t, time.Minute)
		testAsync(t, n1, n3)
	})
	t.Run("NodeKilledUnderLoad", func(t *testing.T) {
		c.waitHealthy(t, time.Minute)
		testKill(t, n2, []*node{n1, n3})
	})
	t.Run("CutOffWithoutQuorum", func(t *testing.T) {
		c.waitHealthy(t, 2*time.Minute)
		testCutOff(t, n1, []*node{n2, n3})
	})
	t.Run("RollingRestart", func(t *testing.T) {
		c.waitHealthy(t, 2*time.Minute)
		testRollingRestart(t, n2, []*node{n1, n3})
	})
}

// testDeploy deploys a new version of probe through on's admin API (gatehouse deploy, with on's
// data directory) and waits until every node of others serves it. With secret, its COLOR is a secret
// value, sealed with the key the nodes share.
func testDeploy(t *testing.T, on *node, others []*node, secret bool) {
	for _, n := range append([]*node{on}, others...) {
		status, a, err := getProbe(n)
		if err != nil || status != http.StatusOK || a.Color != "stack" {
			t.Fatalf("%s before the deploy: GET /probe: %d %+v %v, want 200 and the stack file's version", n.name, status, a, err)
		}
	}
	_, before, _ := getProbe(on)

	// The function's source with a manifest of its own: a new COLOR makes a new version.
	dir := filepath.Join(workRoot, "deploy-"+on.name, "probe")
	copyDir(t, filepath.Join("testdata", "functions", "probe"), dir)
	manifest := "version: 1\nname: probe\ntimeout: 60s\nenvironment:\n  COLOR: deployed\n"
	if secret {
		manifest += "secrets: [COLOR]\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "function.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := gatehouse(t, 3*time.Minute, "deploy", dir, "--data", on.dir)
	deployed := time.Now()
	if !strings.Contains(out, "deployed probe version") {
		t.Fatalf("gatehouse deploy: %q, want a new version of probe", out)
	}
	t.Logf("gatehouse deploy through %s took %v (a build and the upload): %s", on.name, deployed.Sub(start).Round(time.Millisecond), lines(out)[len(lines(out))-1])
	status, a, err := getProbe(on)
	if err != nil || status != http.StatusOK || a.Color != "deployed" || a.Version == before.Version {
		t.Fatalf("%s right after the deploy answered: GET /probe: %d %+v %v, want the new version", on.name, status, a, err)
	}
	for _, n := range others {
		took := waitFor(t, n.name+" to serve the version deployed through "+on.name, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
			status, got, err := getProbe(n)
			return err == nil && status == http.StatusOK && got == a, fmt.Sprintf("%d %+v %v", status, got, err)
		})
		t.Logf("%s served version %s %v after the deploy answered (%v after it began)", n.name, a.Version,
			took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
}

// wsClient is a WebSocket client of the chat API.
type wsClient struct {
	conn *websocket.Conn
	id   string
}

// dialChat connects to the chat API of n as user agent ua, and finds the connection's id in n's
// admin API's list of its connections.
func dialChat(t *testing.T, n *node, ua string) *wsClient {
	t.Helper()
	d := &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.Dial("ws://"+n.addr+"/chat", http.Header{"User-Agent": {ua}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dialing the chat on %s: %v (status %d)", n.name, err, status)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{conn: conn}
	token := n.adminToken(t)
	waitFor(t, "the connection in "+n.name+"'s list", 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		req, _ := http.NewRequest("GET", n.adminURL("/admin/v1/connections"), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := httpClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var list adminapi.ConnectionList
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			return false, fmt.Sprintf("%d: %v", resp.StatusCode, err)
		}
		for _, v := range list.Connections {
			if v.UserAgent == ua {
				c.id = v.ID
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", list)
	})
	if !strings.HasPrefix(c.id, n.nodeID(t)) {
		t.Errorf("connection id %s on %s does not start with the node's id %s", c.id, n.name, n.nodeID(t))
	}
	return c
}

// waitFrame reads frames until one satisfies match, for at most bound; it returns the frames read.
func (c *wsClient) waitFrame(t *testing.T, what string, bound time.Duration, match func([]byte) bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	var seen []string
	for {
		c.conn.SetReadDeadline(deadline)
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v (frames read: %q)", what, err, seen)
		}
		if match(data) {
			return
		}
		seen = append(seen, string(data))
	}
}

// postToConnection posts data to connection id through n's @connections API, signed with the stack's
// access key, and returns the status.
func postToConnection(t *testing.T, n *node, id string, data []byte) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", n.url("/chat/@connections/"+id), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// testWebSockets checks that a client on b gets a post made through c's @connections API, and a
// chat message that a client on a sends.
func testWebSockets(t *testing.T, a, b, c *node) {
	nonce := fmt.Sprint(time.Now().UnixNano())
	onB := dialChat(t, b, "clustertest-ws-b-"+nonce)

	post := []byte("posted through " + c.name + " " + nonce)
	start := time.Now()
	status, err := postToConnection(t, c, onB.id, post)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST /chat/@connections/%s through %s: %d %v, want 200", onB.id, c.name, status, err)
	}
	onB.waitFrame(t, "the post through "+c.name, 10*time.Second, func(f []byte) bool { return bytes.Equal(f, post) })
	t.Logf("a post through %s's @connections reached a client on %s in %v", c.name, b.name, time.Since(start).Round(time.Microsecond))

	// The same through c's admin API (gatehouse connections post).
	post = []byte("posted through " + c.name + "'s admin API " + nonce)
	req, err := http.NewRequest("POST", c.adminURL("/admin/v1/connections/"+onB.id), bytes.NewReader(post))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.adminToken(t))
	start = time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /admin/v1/connections/%s on %s: %d, want 204", onB.id, c.name, resp.StatusCode)
	}
	onB.waitFrame(t, "the post through "+c.name+"'s admin API", 10*time.Second, func(f []byte) bool { return bytes.Equal(f, post) })
	t.Logf("a post through %s's admin API reached a client on %s in %v", c.name, b.name, time.Since(start).Round(time.Microsecond))

	// The connection list through c's admin API (gatehouse connections ls) has b's connection.
	lreq, _ := http.NewRequest("GET", c.adminURL("/admin/v1/connections"), nil)
	lreq.Header.Set("Authorization", "Bearer "+c.adminToken(t))
	lresp, err := http.DefaultClient.Do(lreq)
	if err != nil {
		t.Fatal(err)
	}
	var list adminapi.ConnectionList
	err = json.NewDecoder(lresp.Body).Decode(&list)
	lresp.Body.Close()
	listed := false
	for _, v := range list.Connections {
		listed = listed || v.ID == onB.id
	}
	if err != nil || lresp.StatusCode != http.StatusOK || !listed {
		t.Fatalf("GET /admin/v1/connections on %s: %d, %d connections, %v; want %s's connection %s listed", c.name, lresp.StatusCode, len(list.Connections), err, b.name, onB.id)
	}

	onA := dialChat(t, a, "clustertest-ws-a-"+nonce)
	text := "said on " + a.name + " " + nonce
	start = time.Now()
	msg, _ := json.Marshal(map[string]string{"action": "sendmessage", "data": text})
	onA.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := onA.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	isMessage := func(f []byte) bool {
		var n struct{ Type, Data string }
		return json.Unmarshal(f, &n) == nil && n.Type == "message" && n.Data == text
	}
	onB.waitFrame(t, "the chat message sent on "+a.name, 10*time.Second, isMessage)
	t.Logf("a chat message sent on %s reached a client on %s in %v", a.name, b.name, time.Since(start).Round(time.Microsecond))
	// The sender is a member too: it gets the message with everyone else.
	onA.waitFrame(t, "the chat message back on "+a.name, 10*time.Second, isMessage)
}

// testKill runs a bounded load against the nodes of serving while victim is killed with its workers,
// checks that no request waited for its timeout and that requests after the loss all succeed, that
// posts to the lost node's connection answer 410, and that the node restarted serves and rejoins.
func testKill(t *testing.T, victim *node, serving []*node) {
	ws := dialChat(t, victim, fmt.Sprintf("clustertest-kill-%d", time.Now().UnixNano()))

	// 8 clients, one request in flight each; the probe takes 100 ms, so that the gateways send some
	// invocations to the other nodes' workers, the victim's included.
	finish := startLoad(t, serving, 8, "/probe?ms=100", `"sleptMs":100`)
	time.Sleep(2 * time.Second)
	killed := time.Now()
	victim.kill(t)
	t.Logf("killed %s (SIGKILL to it and its workers) at %s", victim.name, killed.Format("15:04:05.000"))

	// Its connection is gone: its client sees the socket end, and a post to it answers 410.
	ws.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.conn.ReadMessage()
		if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("the lost node's WebSocket client: the socket did not end within 10 s of the kill")
		}
		if err != nil {
			break
		}
	}
	gone := waitFor(t, "a post to the lost node's connection to answer 410", 15*time.Second, 100*time.Millisecond, func() (bool, string) {
		status, err := postToConnection(t, serving[0], ws.id, []byte("anyone there?"))
		return status == http.StatusGone, fmt.Sprintf("%d %v", status, err)
	})
	t.Logf("a post to the lost node's connection answered 410 %v after the kill (polled every 100 ms)", gone.Round(time.Millisecond))

	time.Sleep(time.Until(killed.Add(6 * time.Second)))
	rs := finish()
	t.Logf("load through %s and %s: %s", serving[0].name, serving[1].name, summary(rs))
	var failed, failedLate []result
	var slowest result
	for _, r := range rs {
		if r.latency > slowest.latency {
			slowest = r
		}
		if !r.ok() {
			failed = append(failed, r)
			if r.start.After(killed.Add(3 * time.Second)) {
				failedLate = append(failedLate, r)
			}
		}
	}
	for _, r := range failed {
		t.Logf("failed: %v (%v after the kill)", r, r.start.Sub(killed).Round(time.Millisecond))
	}
	// The probe takes 100 ms: a request that failed sooner never ran its invocation, which the
	// dispatcher must then send to another worker rather than fail.
	var neverRan []string
	for _, r := range failed {
		if r.latency < 100*time.Millisecond {
			neverRan = append(neverRan, fmt.Sprintf("%v (%v after the kill)", r, r.start.Sub(killed).Round(time.Millisecond)))
		}
	}
	if len(neverRan) > 0 {
		msg := fmt.Sprintf("%d requests failed in under 100 ms, their invocation never run nor sent to another worker: %s",
			len(neverRan), strings.Join(neverRan, "; "))
		t.Error(msg)
	}
	if slowest.latency > requestBound {
		t.Errorf("a request took %v (%v), over %v: an invocation waited for its timeout", slowest.latency, slowest, requestBound)
	}
	for _, r := range failedLate {
		t.Errorf("failed 3 s or more after the kill: %v", r)
	}
	late := 0
	for _, r := range rs {
		if r.start.After(killed.Add(3 * time.Second)) {
			late++
		}
	}
	if late == 0 {
		t.Errorf("no request started 3 s after the kill or later: the load stalled")
	}

	// The stored state takes writes with one of its three servers gone: a token made through one
	// of the others is accepted by the third.
	// A write to a group whose leader was on the lost node waits for a new leader: retried.
	token := ""
	waitFor(t, "a token made through "+serving[0].name+" with "+victim.name+" down", 30*time.Second, 500*time.Millisecond, func() (bool, string) {
		// A new name each time: an attempt whose answer was lost may have stored its token.
		name := fmt.Sprintf("while-down-%d", time.Now().UnixNano()%1e9)
		out, err := exec.Command(gatehouseBin, "tokens", "create", name, "--data", serving[0].dir).CombinedOutput()
		for _, l := range lines(string(out)) {
			if f := strings.TrimSpace(l); strings.HasPrefix(f, "gh.") {
				token = f
			}
		}
		return token != "", fmt.Sprintf("%v: %s", err, out)
	})
	// The listing needs a JetStream consumer, which waits for the groups that lost their leader
	// with the node to elect another: a few seconds.
	third := serving[len(serving)-1]
	took := waitFor(t, "a token made with "+victim.name+" down, used on "+third.name, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		req, _ := http.NewRequest("GET", "http://"+third.admin+"/admin/v1/tokens", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	t.Logf("a token made through %s with %s down worked on %s %v after it was made", serving[0].name, victim.name, third.name, took.Round(time.Millisecond))

	// Restarted with the same data directory and flags, it serves and rejoins.
	restart := time.Now()
	victim.start(t)
	victim.waitUp(t, startBound)
	if status, body, err := get(victim.url("/hello"), 10*time.Second); err != nil || status != http.StatusOK {
		t.Fatalf("%s restarted: GET /hello: %d %s %v", victim.name, status, body, err)
	}
	id := victim.nodeID(t)
	waitFor(t, victim.name+" to be listed ready again", time.Minute, 500*time.Millisecond, func() (bool, string) {
		st := clusterStatus(t, serving[0])
		for _, ns := range st.Nodes {
			if ns.ID == id && ns.Ready && ns.Started.After(killed) {
				return true, ""
			}
		}
		b, _ := json.Marshal(st.Nodes)
		return false, string(b)
	})
	t.Logf("%s restarted, served and listed ready in %v", victim.name, time.Since(restart).Round(time.Millisecond))
}

// testCutOff stops the nodes of others (SIGSTOP: their processes and routes freeze, as a partition
// looks to n), checks that n stops serving (503 on its gateway and /healthz), then lets them go on
// and checks that n serves again.
func testCutOff(t *testing.T, n *node, others []*node) {
	if status, _, err := get(n.url("/hello"), 10*time.Second); err != nil || status != http.StatusOK {
		t.Fatalf("%s before the cut-off: GET /hello: %d %v", n.name, status, err)
	}
	stopped := time.Now()
	for _, o := range others {
		o.signal(syscall.SIGSTOP, true)
	}
	continued := false
	resume := func() {
		if !continued {
			continued = true
			for _, o := range others {
				o.signal(syscall.SIGCONT, true)
			}
		}
	}
	defer resume()

	// The default --cutoff is 5 s, after about 4 s to notice routes that stopped answering pings.
	var gw503, health503 time.Duration
	waitFor(t, n.name+" to answer 503 on its gateway and /healthz", 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		status, _, err := get(n.url("/hello"), 5*time.Second)
		if status == http.StatusServiceUnavailable && gw503 == 0 {
			gw503 = time.Since(stopped)
		}
		health := n.healthz()
		if health == http.StatusServiceUnavailable && health503 == 0 {
			health503 = time.Since(stopped)
		}
		return gw503 > 0 && health503 > 0, fmt.Sprintf("gateway %d %v, /healthz %d", status, err, health)
	})
	t.Logf("cut off: %s answered 503 on its gateway %v and on /healthz %v after the others stopped", n.name,
		gw503.Round(time.Millisecond), health503.Round(time.Millisecond))
	_, body, _ := get(n.adminURL("/healthz"), 5*time.Second)
	if !strings.Contains(string(body), "cut off") {
		t.Errorf("/healthz while cut off: %s, want the reason", body)
	}

	resume()
	took := waitFor(t, n.name+" to serve again", 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		status, _, err := get(n.url("/hello"), 5*time.Second)
		health := n.healthz()
		return status == http.StatusOK && health == http.StatusOK, fmt.Sprintf("gateway %d %v, /healthz %d", status, err, health)
	})
	t.Logf("%s served again %v after the others went on", n.name, took.Round(time.Millisecond))
}

// testRollingRestart restarts victim as an operator would (SIGTERM, wait, start, wait for /healthz)
// while clients send requests to the nodes of serving, none of which may fail.
func testRollingRestart(t *testing.T, victim *node, serving []*node) {
	finish := startLoad(t, serving, 8, "/probe?ms=50", `"sleptMs":50`)
	time.Sleep(time.Second)

	start := time.Now()
	victim.terminate(t, time.Minute)
	exited := time.Since(start)
	victim.start(t)
	victim.waitUp(t, startBound)
	waitFor(t, victim.name+"'s /healthz to answer 200", time.Minute, 100*time.Millisecond, func() (bool, string) {
		s := victim.healthz()
		return s == http.StatusOK, fmt.Sprint(s)
	})
	back := time.Since(start)
	time.Sleep(time.Second)
	rs := finish()
	t.Logf("rolling restart of %s: exited %v after SIGTERM, ready again after %v; load through %s and %s: %s",
		victim.name, exited.Round(time.Millisecond), back.Round(time.Millisecond), serving[0].name, serving[1].name, summary(rs))
	for _, r := range rs {
		if !r.ok() {
			t.Errorf("failed during the rolling restart: %v (%v after the SIGTERM)", r, r.start.Sub(start).Round(time.Millisecond))
		}
	}
	if status, _, err := get(victim.url("/hello"), 10*time.Second); err != nil || status != http.StatusOK {
		t.Errorf("%s after its restart: GET /hello: %d %v", victim.name, status, err)
	}
}

// TestClusterStartsTogether starts the three nodes of a new cluster at once, as Kubernetes does
// (deploy/kubernetes: podManagementPolicy Parallel) and docs/cluster.md allows ("The machines may
// start in any order"): every node must start without being restarted, and serve the stack file's
// functions as their first version.
func TestClusterStartsTogether(t *testing.T) {
	skipShort(t)
	c := newCluster(t, "together", "", "", "")
	start := time.Now()
	for _, n := range c.nodes {
		n.start(t)
	}
	for _, n := range c.nodes {
		n.waitUp(t, startBound)
	}
	c.waitFormed(t)
	t.Logf("three nodes started together formed a cluster in %v", time.Since(start).Round(time.Millisecond))
	for _, n := range c.nodes {
		if status, p, err := getProbe(n); err != nil || status != http.StatusOK || p.Version != "1" || p.Color != "stack" {
			t.Errorf("%s: GET /probe: %d %+v %v, want the stack file's version 1", n.name, status, p, err)
		}
	}
}

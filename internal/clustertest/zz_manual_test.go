package clustertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestZZRace(t *testing.T) {
	urls := startNATSCluster(t, 3)
	a := newNode(t, nodeConfig{name: "ra", nats: strings.Join(urls, ",")})
	b := newNode(t, nodeConfig{name: "rb", nats: strings.Join(urls, ",")})
	defer func() { a.kill(t); b.kill(t) }()
	a.start(t)
	b.start(t)
	time.Sleep(30 * time.Second)
	for _, n := range []*node{a, b} {
		_, err := os.Stat(filepath.Join(n.dir, "admin.token"))
		errb, _ := os.ReadFile(n.logFiles[1])
		t.Logf("%s running %v admin.token: %v; stderr: %s", n.name, n.running(), err, errb)
	}
}

func TestZZParallel(t *testing.T) {
	var nodes []*node
	var join []string
	for range 3 {
		join = append(join, freeAddr(t))
	}
	for i := range 3 {
		nodes = append(nodes, newNode(t, nodeConfig{name: fmt.Sprintf("p%d", i), cluster: "par", route: join[i], join: join}))
	}
	tok := filepath.Join(workRoot, "par.token")
	os.WriteFile(tok, []byte(gatehouse(t, time.Minute, "cluster", "token", "--data", nodes[0].dir, "--cluster", "par")), 0o600)
	for _, n := range nodes {
		n.args = append(n.args, "--cluster-token-file", tok)
		n.start(t)
	}
	defer func() {
		for _, n := range nodes {
			n.kill(t)
		}
	}()
	time.Sleep(40 * time.Second)
	for _, n := range nodes {
		errb, _ := os.ReadFile(n.logFiles[1])
		t.Logf("%s running %v up %v; stderr: %s", n.name, n.running(), strings.Contains(n.output(), "Gatehouse is up"), errb)
	}
}

package bus

import (
	"path/filepath"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/tlsconf"
)

// Routes over TLS: nodes with certificates from the cluster's route CA form a cluster; a node whose
// certificate another CA signed (with the right route credentials) is refused.
func TestClusterRoutesOverTLS(t *testing.T) {
	caCert, caKey, err := tlsconf.NewRouteCA("gh-test")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := tlsconf.NewRouteCA("gh-test")
	if err != nil {
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 3)
	var nodes []*Server
	for i := range 3 {
		cfg := clusterNode(i, addrs, filepath.Join(t.TempDir(), "js"), testRoutePassword)
		cert, key := caCert, caKey
		if i == 2 {
			cert, key = otherCert, otherKey // an intruder that knows the route credentials
		}
		tlsCfg, err := tlsconf.RouteTLS(cert, key, cfg.NodeName)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Cluster.TLS = tlsCfg
		nodes = append(nodes, startNode(t, cfg))
	}
	took := waitFor(t, 20*time.Second, "the two nodes of one CA routed", func() bool {
		return nodes[0].ClusterSize() == 2 && nodes[1].ClusterSize() == 2
	})
	t.Logf("routed over TLS in %v", took.Round(time.Millisecond))
	if !nodes[0].ns.JetStreamEnabled() {
		t.Fatal("no JetStream")
	}
	// Routes are retried every second or so: give the intruder a few chances.
	time.Sleep(3 * time.Second)
	if got := nodes[2].ClusterSize(); got != 1 || nodes[0].ClusterSize() != 2 {
		t.Fatalf("the node of another CA has %d servers in its cluster (node 0 has %d); want it alone", got, nodes[0].ClusterSize())
	}
}

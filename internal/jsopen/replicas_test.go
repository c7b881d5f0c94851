package jsopen

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

// startCluster starts n in-process servers forming a NATS cluster with clustered JetStream, and
// returns a JetStream client of the first once the meta group has a leader.
func startCluster(t *testing.T, n int) jetstream.JetStream {
	t.Helper()
	var routes []*url.URL
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var first *server.Server
	for i, p := range ports {
		ns, err := server.NewServer(&server.Options{ServerName: fmt.Sprintf("s%d", i), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "jsopen", Host: "127.0.0.1", Port: p}, Routes: routes})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		t.Cleanup(ns.Shutdown)
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("server not ready")
		}
		if first == nil {
			first = ns
		}
	}
	nc, err := nats.Connect(first.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := js.AccountInfo(t.Context()); err == nil {
			return js
		} else if time.Now().After(deadline) {
			t.Fatalf("no JetStream quorum: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func replicasOf(t *testing.T, js jetstream.JetStream, stream string) int {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.Config.Replicas
}

// Through Replicated, buckets and streams get the replicas the cluster asks for, an update that asks
// for fewer never lowers them, and RaiseReplicas raises one made with fewer.
func TestReplicated(t *testing.T) {
	raw := startCluster(t, 3)
	ctx := t.Context()
	js := Replicated(raw, func() int { return 3 })
	if _, err := KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "kv"}); err != nil {
		t.Fatal(err)
	}
	if r := replicasOf(t, raw, "KV_kv"); r != 3 {
		t.Fatalf("a new bucket has %d replicas, want 3", r)
	}
	// Its reads go to the leader: a replica behind the latest write must not answer them.
	if s, err := raw.Stream(ctx, "KV_kv"); err != nil || s.CachedInfo().Config.AllowDirect {
		t.Fatalf("a new bucket's stream allows direct reads from any replica (%v)", err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kv", Replicas: 1, Description: "updated"}); err != nil {
		t.Fatal(err)
	}
	if r := replicasOf(t, raw, "KV_kv"); r != 3 {
		t.Fatalf("an update asking for 1 left %d replicas, want 3 kept", r)
	}
	if _, err := ObjectStore(ctx, js, jetstream.ObjectStoreConfig{Bucket: "obs"}); err != nil {
		t.Fatal(err)
	}
	if r := replicasOf(t, raw, "OBJ_obs"); r != 3 {
		t.Fatalf("a new object store has %d replicas, want 3", r)
	}

	// Made with one replica behind Replicated's back, as by a node that started when it was alone.
	if _, err := raw.CreateStream(ctx, jetstream.StreamConfig{Name: "gh_x_logs", Subjects: []string{"logs.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.CreateStream(ctx, jetstream.StreamConfig{Name: "other", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	raised, err := RaiseReplicas(ctx, js, func(name string) bool { return name != "other" }, 3)
	if err != nil || len(raised) != 1 || raised[0] != "gh_x_logs" {
		t.Fatalf("RaiseReplicas: raised %v, %v; want [gh_x_logs]", raised, err)
	}
	if r := replicasOf(t, raw, "gh_x_logs"); r != 3 {
		t.Fatalf("after RaiseReplicas: %d replicas, want 3", r)
	}
	if r := replicasOf(t, raw, "other"); r != 1 {
		t.Fatalf("a stream RaiseReplicas was told to leave has %d replicas, want 1", r)
	}
}

// On a server that is not clustered, asking for three replicas falls back to one.
func TestReplicatedFallsBackOnOneServer(t *testing.T) {
	ns := jstest.Start(t, "")
	_, raw := jstest.Connect(t, ns)
	js := Replicated(raw, func() int { return 3 })
	if _, err := KeyValue(t.Context(), js, jetstream.KeyValueConfig{Bucket: "kv"}); err != nil {
		t.Fatal(err)
	}
	if r := replicasOf(t, raw, "KV_kv"); r != 1 {
		t.Fatalf("%d replicas on one server, want 1", r)
	}
}

// A single-node store's buckets and streams copy into a cluster: values, history order, object
// contents and deleted keys as they were, with the cluster's replicas; a stream that already has
// messages there is refused, never merged.
func TestCopyStreams(t *testing.T) {
	ctx := t.Context()
	ns := jstest.Start(t, "")
	_, single := jstest.Connect(t, ns)
	kv, err := single.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "gh_x_functions", History: 5})
	if err != nil {
		t.Fatal(err)
	}
	kv.Put(ctx, "a", []byte("1"))
	rev, _ := kv.Put(ctx, "b", []byte("1"))
	if _, err := kv.Update(ctx, "b", []byte("2"), rev); err != nil { // stored with an expected-revision header
		t.Fatal(err)
	}
	kv.Put(ctx, "c", []byte("gone"))
	kv.Delete(ctx, "c")
	obs, err := single.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "gh_x_modules"})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if _, err := obs.PutBytes(ctx, "module", big); err != nil {
		t.Fatal(err)
	}
	if _, err := single.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "other"}); err != nil {
		t.Fatal(err)
	}

	cluster := Replicated(startCluster(t, 3), func() int { return 3 })
	keep := func(name string) bool { return strings.Contains(name, "gh_x_") }
	copied, n, err := CopyStreams(ctx, single, cluster, keep)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(copied)
	if !slices.Equal(copied, []string{"KV_gh_x_functions", "OBJ_gh_x_modules"}) || n == 0 {
		t.Fatalf("copied %v (%d messages)", copied, n)
	}
	ckv, err := cluster.KeyValue(ctx, "gh_x_functions")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a": "1", "b": "2"} {
		if e, err := ckv.Get(ctx, key); err != nil || string(e.Value()) != want {
			t.Fatalf("copied %s: %v, %v; want %q", key, e, err, want)
		}
	}
	if _, err := ckv.Get(ctx, "c"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("a deleted key after the copy: %v, want not found", err)
	}
	if hist, err := ckv.History(ctx, "b"); err != nil || len(hist) != 2 || string(hist[0].Value()) != "1" {
		t.Fatalf("history of b: %d entries, %v", len(hist), err)
	}
	cobs, err := cluster.ObjectStore(ctx, "gh_x_modules")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cobs.GetBytes(ctx, "module"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("copied object: %d bytes, %v", len(got), err)
	}
	if r := replicasOf(t, cluster, "OBJ_gh_x_modules"); r != 3 {
		t.Fatalf("copied store has %d replicas, want 3", r)
	}
	if _, err := cluster.Stream(ctx, "KV_other"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("a stream keep refused was copied: %v", err)
	}
	if _, _, err := CopyStreams(ctx, single, cluster, keep); !errors.Is(err, ErrStreamNotEmpty) {
		t.Fatalf("copying again: %v, want ErrStreamNotEmpty", err)
	}
}

package bus

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestWorkerReadsJetStream checks the worker role against what workers do with JetStream: watch a
// Key-Value bucket, read an object and publish to a configured subject, and never write a stream
// they may only read.
func TestWorkerReadsJetStream(t *testing.T) {
	s, err := NewServer(ServerConfig{Stack: "t", StoreDir: t.TempDir(),
		WorkerReads: []string{"KV_cfg", "OBJ_mods"}, WorkerPublishes: []string{"gh.t.logs.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	control := connect(t, s, RoleControl)
	cjs, err := jetstream.New(control.Conn())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := cjs.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cfg"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "fn.a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	obs, err := cjs.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "mods"})
	if err != nil {
		t.Fatal(err)
	}
	module := bytes.Repeat([]byte("wasm"), 100_000) // several chunks
	if _, err := obs.PutBytes(ctx, "m1", module); err != nil {
		t.Fatal(err)
	}

	w, err := Connect(ClientConfig{URL: s.ClientURL(), Credentials: s.Credentials(RoleWorker), Stack: "t", Name: "worker", InboxPrefix: WorkerInboxPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	wjs, err := jetstream.New(w.Conn())
	if err != nil {
		t.Fatal(err)
	}
	wkv, err := wjs.KeyValue(ctx, "cfg")
	if err != nil {
		t.Fatalf("worker binding the bucket: %v", err)
	}
	watch, err := wkv.WatchAll(ctx)
	if err != nil {
		t.Fatalf("worker watching the bucket: %v", err)
	}
	defer watch.Stop()
	if e := <-watch.Updates(); e == nil || string(e.Value()) != "1" {
		t.Fatalf("first watch entry %v, want fn.a=1", e)
	}
	if _, err := kv.Put(ctx, "fn.a", []byte("2")); err != nil {
		t.Fatal(err)
	}
	for e := range watch.Updates() {
		if e != nil && string(e.Value()) == "2" {
			break
		}
	}
	if e, err := wkv.Get(ctx, "fn.a"); err != nil || string(e.Value()) != "2" {
		t.Fatalf("worker get: %v, %v", e, err)
	}
	wobs, err := wjs.ObjectStore(ctx, "mods")
	if err != nil {
		t.Fatalf("worker binding the object store: %v", err)
	}
	got, err := wobs.GetBytes(ctx, "m1")
	if err != nil || !bytes.Equal(got, module) {
		t.Fatalf("worker reading an object: %d bytes, %v", len(got), err)
	}
	if err := w.Conn().Publish("gh.t.logs.fn", []byte("x")); err != nil {
		t.Fatal(err)
	}

	// Writes are refused.
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if _, err := wkv.Put(short, "fn.a", []byte("evil")); err == nil {
		t.Fatal("worker wrote to the bucket")
	}
	if _, err := wobs.PutBytes(short, "m2", []byte("evil")); err == nil {
		t.Fatal("worker wrote an object")
	}
	if err := wjs.DeleteStream(short, "KV_cfg"); err == nil {
		t.Fatal("worker deleted a stream")
	}
	if _, err := cjs.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "other"}); err != nil {
		t.Fatal(err)
	}
	if _, err := wjs.KeyValue(short, "other"); err == nil {
		t.Fatal("worker bound a bucket it may not read")
	}
	if e, err := kv.Get(ctx, "fn.a"); err != nil || string(e.Value()) != "2" {
		t.Fatalf("bucket changed: %v, %v", e, err)
	}
}

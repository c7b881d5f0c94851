package jsopen

import (
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

// Nodes that open the same bucket, store or stream at once all get it; one opened later keeps the
// configuration it was created with.
func TestOpenCreatesOnceAndKeepsTheConfiguration(t *testing.T) {
	ns := jstest.Start(t, "")
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for range 4 {
		_, js := jstest.Connect(t, ns)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "kv", History: 5})
			errs <- err
			_, err = Stream(ctx, js, jetstream.StreamConfig{Name: "st", Subjects: []string{"st.>"}, MaxMsgs: 10})
			errs <- err
			_, err = ObjectStore(ctx, js, jetstream.ObjectStoreConfig{Bucket: "obs"})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	_, js := jstest.Connect(t, ns)
	kv, err := KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "kv", History: 9})
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil || st.History() != 5 {
		t.Errorf("history %d (%v), want the 5 it was created with", st.History(), err)
	}
	s, err := Stream(ctx, js, jetstream.StreamConfig{Name: "st", Subjects: []string{"st.>"}, MaxMsgs: 99})
	if err != nil || s.CachedInfo().Config.MaxMsgs != 10 {
		t.Errorf("stream config %+v (%v), want MaxMsgs 10", s.CachedInfo().Config, err)
	}
	if _, err := KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "bad name"}); err == nil {
		t.Error("a bucket with an invalid name opened")
	}
}

package connections

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// encodeJSON is what encode wrote before it had a fast path, size limit aside.
func encodeJSON(r Record) ([]byte, error) {
	return json.Marshal(stored{SchemaVersion: SchemaVersion, Record: r})
}

// checkEncode checks that encode writes what encoding/json writes for r, and that a record the
// fast path takes decodes back to r.
func checkEncode(t *testing.T, r Record) {
	t.Helper()
	want, wantErr := encodeJSON(r)
	got, err := encode(r)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("error %v, want %v", err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("record\n got %s\nwant %s", got, want)
	}
	if _, fast := encodeFast(&r); err != nil || !fast {
		return
	}
	back, err := decode(r.ID, got)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != r.ID || !back.ConnectedAt.Equal(r.ConnectedAt) || !back.LastActiveAt.Equal(r.LastActiveAt) || back.UserAgent != r.UserAgent {
		t.Errorf("decoded %+v, want %+v", back, r)
	}
}

func TestEncode(t *testing.T) {
	base := Record{ID: "n1-abc_DEF", API: "live", Stage: "prod", ConnectedAt: time.Date(2026, 12, 7, 15, 4, 5, 123456789, time.UTC),
		LastActiveAt: time.Date(2026, 12, 7, 15, 4, 5, 0, time.FixedZone("CET", 3600)), SourceIP: "127.0.0.1", UserAgent: "Go-http-client/1.1"}
	tests := []struct {
		name   string
		change func(r *Record)
		fast   bool // whether the hand-written encoder takes it
	}{
		{"plain", func(*Record) {}, true},
		{"empty strings", func(r *Record) { r.API, r.Stage, r.SourceIP, r.UserAgent = "", "", "", "" }, true},
		{"zero times", func(r *Record) { r.ConnectedAt, r.LastActiveAt = time.Time{}, time.Time{} }, true},
		{"local time", func(r *Record) { r.ConnectedAt = time.Now(); r.LastActiveAt = r.ConnectedAt.Round(0) }, true},
		{"HTML in the user agent", func(r *Record) { r.UserAgent = "Mozilla <x> & co" }, false},
		{"quote in the stage", func(r *Record) { r.Stage = `a"b\c` }, false},
		{"non-ASCII user agent", func(r *Record) { r.UserAgent = "é\u2028\xff" }, false},
		{"control character", func(r *Record) { r.SourceIP = "a\tb" }, false},
		{"authorizer", func(r *Record) { r.Authorizer = json.RawMessage(`{"principalId": "<u>"}`) }, false},
		{"year 10000", func(r *Record) { r.ConnectedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"negative year", func(r *Record) { r.LastActiveAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"zone offset of a day", func(r *Record) { r.ConnectedAt = r.ConnectedAt.In(time.FixedZone("X", 24*3600)) }, false},
		{"zone offset under a day", func(r *Record) { r.ConnectedAt = r.ConnectedAt.In(time.FixedZone("X", -(23*3600 + 59*60))) }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.change(&r)
			if _, ok := encodeFast(&r); ok != tc.fast {
				t.Errorf("encodeFast took it: %v, want %v", ok, tc.fast)
			}
			checkEncode(t, r)
		})
	}
}

// FuzzEncode checks encode against encoding/json on records made of arbitrary strings and times.
func FuzzEncode(f *testing.F) {
	f.Add("n1-abc", "live", "prod", "127.0.0.1", "Go-http-client/1.1", int64(1796569445123456789), 0)
	f.Add("x", "<", "\"", "é", "\xff\u2028", int64(-62135596800000000), 3600)
	f.Fuzz(func(t *testing.T, id, api, stage, ip, ua string, nanos int64, offset int) {
		if id == "" {
			id = "x"
		}
		// Whole minutes: RFC 3339 drops the seconds of a zone offset, in both encoders.
		at := time.Unix(0, nanos).In(time.FixedZone("Z", offset%(48*60)*60))
		checkEncode(t, Record{ID: id, API: api, Stage: stage, ConnectedAt: at, LastActiveAt: at.Add(time.Duration(offset)),
			SourceIP: ip, UserAgent: ua})
	})
}

func BenchmarkEncode(b *testing.B) {
	r := benchRecord()
	r.Authorizer = nil
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeJSON(r)
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encode(r)
		}
	})
}

// TestPutBatches puts large records from many goroutines at once, so that group commits need more
// than one transaction, and checks that each is stored when its Put returns.
func TestPutBatches(t *testing.T) {
	s := openStore(t, time.Hour)
	const (
		workers = 32
		rounds  = 20
	)
	big := strings.Repeat("u", 8<<10)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				r := record(NewID(testNode), "chat", t0)
				r.UserAgent = big
				if err := s.Put(r); err != nil {
					t.Error(err)
					return
				}
				if got, err := s.Get(r.ID); err != nil || got.UserAgent != big {
					t.Errorf("Get %s right after Put: %v", r.ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, err := s.Count(); err != nil || n != workers*rounds {
		t.Errorf("Count = %d, %v; want %d", n, err, workers*rounds)
	}
}

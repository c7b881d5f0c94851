// Command snapinit is a test function that reads the clock and random numbers while it initialises,
// and reports them with what it reads on each invocation: what a snapshot of its initialised
// instance freezes, and what it does not.
package main

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"time"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

var (
	initTime = time.Now()
	// frozen is seeded at initialisation and never again; reseeded is drawn again after a restore.
	frozen   = rand.New(rand.NewPCG(uint64(initTime.UnixNano()), cryptoUint64()))
	reseeded = rand.New(rand.NewPCG(uint64(initTime.UnixNano()), cryptoUint64()))
	restored bool
	calls    int
)

func cryptoUint64() uint64 {
	var b [8]byte
	crand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

type report struct {
	Calls        int    `json:"calls"`
	Restored     bool   `json:"restored"`
	InitUnixNano int64  `json:"initUnixNano"`
	NowUnixNano  int64  `json:"nowUnixNano"`
	SinceInitNs  int64  `json:"sinceInitNs"`
	SleptNs      int64  `json:"sleptNs"`
	Frozen       uint64 `json:"frozen"`
	Reseeded     uint64 `json:"reseeded"`
	Runtime      uint64 `json:"runtime"`
	Crypto       uint64 `json:"crypto"`
	Env          string `json:"env"`
	Map          []int  `json:"map"`
}

func handle(ctx context.Context, _ json.RawMessage) (report, error) {
	calls++
	start := time.Now()
	time.Sleep(2 * time.Millisecond)
	r := report{
		Calls: calls, Restored: restored,
		InitUnixNano: initTime.UnixNano(), NowUnixNano: time.Now().UnixNano(),
		SinceInitNs: int64(time.Since(initTime)), SleptNs: int64(time.Since(start)),
		Frozen: frozen.Uint64(), Reseeded: reseeded.Uint64(), Runtime: rand.Uint64(), Crypto: cryptoUint64(),
		Env: os.Getenv("SNAP_ENV"),
	}
	m := map[int]bool{}
	for i := range 16 {
		m[i] = true
	}
	for k := range m {
		r.Map = append(r.Map, k)
	}
	return r, nil
}

func main() {
	sdk.AfterRestore(func() {
		restored = true
		reseeded = rand.New(rand.NewPCG(cryptoUint64(), cryptoUint64()))
	})
	sdk.Start(handle)
}

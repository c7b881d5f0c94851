package meter_test

import (
	"os"
	"testing"

	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes/meter"
)

// BenchmarkInstrumentGoHello measures rewriting the Go hello module (about 3 MB).
func BenchmarkInstrumentGoHello(b *testing.B) {
	wasm, err := os.ReadFile(testfix.Reactor(b, "samples/hello"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wasm)))
	for b.Loop() {
		if _, err := meter.Instrument(wasm, meter.Config{ImportModule: "gatehouse", ImportName: "yield", Fuel: 1 << 20, MaxDepth: 20000, BulkShift: 6}); err != nil {
			b.Fatal(err)
		}
	}
}

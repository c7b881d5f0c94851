package stackfile

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func FuzzHang(f *testing.F) {
	for _, name := range []string{"example.yaml", "full.yaml"} {
		data, _ := os.ReadFile("testdata/" + name)
		f.Add(data)
	}
	dir := stackDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		go func() {
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				os.WriteFile("/tmp/hang_input.bin", data, 0o644)
				os.WriteFile("/tmp/hang_stack.txt", buf[:n], 0o644)
				os.Exit(3)
			}
		}()
		Parse("f.yaml", data, dir)
		close(done)
	})
}

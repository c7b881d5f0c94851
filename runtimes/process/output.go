package process

import (
	"bufio"
	"errors"
	"io"
	"sync"
)

// MaxLineBytes bounds one Write of process output: a longer line is written in pieces of this size.
const MaxLineBytes = 64 << 10

// copyLines reads r to its end and writes it to w one line (with its newline) per Write, or a piece of
// at most MaxLineBytes of a longer line; mu serialises the writes of stdout and stderr, which may share
// a writer. Write errors are ignored: output is best effort and must never block the process.
func copyLines(w io.Writer, mu *sync.Mutex, r io.Reader) {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && w != nil {
			mu.Lock()
			_, _ = w.Write(line)
			mu.Unlock()
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

package gateway

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
)

// errFrameTooBig is the read error of a socket whose client sent a frame larger than its API's
// WebSocketSettings.MaxFrameBytes; the gateway closes the socket with 1009, as for a message too big.
var errFrameTooBig = errors.New("websocket: frame larger than the API's maxFrameBytes")

// frameLimitConn enforces WebSocketSettings.MaxFrameBytes on the frames a client sends.
//
// The WebSocket library bounds whole messages (SetReadLimit) but has no hook for single frames: it
// parses frame headers inside its own reader. So the socket reads through this wrapper, which
// follows the frames in the client's byte stream (RFC 6455 §5.2: two bytes, a 2- or 8-byte extended
// payload length, a 4-byte mask key when masked, then the payload) and fails the read at the header
// of a frame whose payload is over the limit. The bytes before that header (earlier frames) are
// delivered first, then the read fails; none of the big frame's payload is delivered (only those
// bytes of its header that came in earlier reads). After the failure reads pass straight through, so
// that the gateway can drain what the client still sends before it closes.
//
// Only reads are wrapped; the reader is the socket's one reading goroutine, so the parser needs no
// lock.
type frameLimitConn struct {
	net.Conn
	max int64

	hdr       [14]byte // the header being read
	hdrLen    int
	remaining int64 // payload bytes of the current frame still to pass
	pending   error // returned by the next Read
	failed    bool  // the limit was hit: reads pass through
}

// limitFrames wraps nc so that frames over max bytes fail the read; max ≤ 0 leaves nc as it is.
func limitFrames(nc net.Conn, max int) net.Conn {
	if max <= 0 {
		return nc
	}
	return &frameLimitConn{Conn: nc, max: int64(max)}
}

func (f *frameLimitConn) Read(p []byte) (int, error) {
	if f.failed {
		return f.Conn.Read(p)
	}
	if f.pending != nil {
		f.failed = true
		return 0, f.pending
	}
	n, err := f.Conn.Read(p)
	if ok, keep := f.scan(p[:n]); !ok {
		if keep == 0 {
			f.failed = true
			return 0, errFrameTooBig
		}
		f.pending = errFrameTooBig
		return keep, nil
	}
	return n, err
}

// scan follows the frames in b, the next bytes from the client. It reports false, with the number
// of bytes of b before the header of the oversized frame, when a frame's payload is over the limit.
func (f *frameLimitConn) scan(b []byte) (ok bool, keep int) {
	start := 0 // where the header being read starts in b (0 when it started in an earlier read)
	for i := 0; i < len(b); {
		if f.remaining > 0 {
			skip := min(int64(len(b)-i), f.remaining)
			i += int(skip)
			f.remaining -= skip
			continue
		}
		if f.hdrLen == 0 {
			start = i
		}
		f.hdr[f.hdrLen] = b[i]
		f.hdrLen++
		i++
		if f.hdrLen < 2 {
			continue
		}
		size, n := 2, int64(f.hdr[1]&0x7f)
		switch n {
		case 126:
			size += 2
		case 127:
			size += 8
		}
		if f.hdr[1]&0x80 != 0 {
			size += 4 // mask key
		}
		if f.hdrLen < size {
			continue
		}
		switch n {
		case 126:
			n = int64(binary.BigEndian.Uint16(f.hdr[2:4]))
		case 127:
			u := binary.BigEndian.Uint64(f.hdr[2:10])
			n = int64(min(u, math.MaxInt64))
		}
		if n > f.max {
			return false, start
		}
		f.remaining, f.hdrLen = n, 0
	}
	return true, len(b)
}

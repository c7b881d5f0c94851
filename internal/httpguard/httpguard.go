// Package httpguard refuses the HTTP/1.x requests Gatehouse's listeners must not serve, before any
// handler reads them: a request with both Content-Length and Transfer-Encoding (the start of request
// smuggling, RFC 9112 §6.3: a proxy in front may frame it differently), a protocol version other than
// HTTP/1.0 and HTTP/1.1, and too many header lines. The gateway and the admin listener call Check
// first; fasthttp itself already refuses duplicate Content-Length values and header lines without a
// colon.
package httpguard

import (
	"bytes"

	"github.com/gofiber/fiber/v2"
)

// MaxHeaders is the most header lines a request may have. Header bytes are bounded separately, by
// the listener's read buffer.
const MaxHeaders = 100

// Refusals, with their statuses.
var (
	ErrSmuggling      = fiber.NewError(fiber.StatusBadRequest, "a request may not carry both Content-Length and Transfer-Encoding")
	ErrVersion        = fiber.NewError(fiber.StatusHTTPVersionNotSupported, "only HTTP/1.0 and HTTP/1.1 are served")
	ErrTooManyHeaders = fiber.NewError(fiber.StatusRequestHeaderFieldsTooLarge, "too many header lines")
	contentLength     = []byte("content-length")
	transferEncoding  = []byte("transfer-encoding")
	http11, http10    = []byte("HTTP/1.1"), []byte("HTTP/1.0")
)

// Check returns the error a request must be refused with, or nil. When it refuses a request, the
// connection is closed after the answer: what follows on it cannot be trusted to be a request.
func Check(c *fiber.Ctx) error {
	h := &c.Request().Header
	if proto := h.Protocol(); !bytes.Equal(proto, http11) && !bytes.Equal(proto, http10) {
		c.Context().SetConnectionClose()
		return ErrVersion
	}
	lines, hasLength, hasEncoding := 0, false, false
	raw := h.RawHeaders()
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // the blank line that ends the headers
		}
		lines++
		name = bytes.TrimSpace(name)
		hasLength = hasLength || bytes.EqualFold(name, contentLength)
		hasEncoding = hasEncoding || bytes.EqualFold(name, transferEncoding)
	}
	switch {
	case hasLength && hasEncoding:
		c.Context().SetConnectionClose()
		return ErrSmuggling
	case lines > MaxHeaders:
		c.Context().SetConnectionClose()
		return ErrTooManyHeaders
	}
	return nil
}

// Middleware is Check as a Fiber handler.
func Middleware(c *fiber.Ctx) error {
	if err := Check(c); err != nil {
		return err
	}
	return c.Next()
}

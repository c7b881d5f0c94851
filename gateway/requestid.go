package gateway

import (
	"crypto/rand"
	"encoding/base64"
)

// requestIDBytes is the number of random bytes in a request id. Eleven bytes encode
// to 16 base64 characters ending in a single "=", the shape of API Gateway's ids.
const requestIDBytes = 11

// NewRequestID returns a new random request id shaped like API Gateway's
// apigw-requestid values (e.g. "Mc7UVioPPHcEKPA="): 11 bytes from crypto/rand in
// standard base64, 16 characters ending in "=". It is safe for concurrent use.
func NewRequestID() string {
	var raw [requestIDBytes]byte
	// crypto/rand.Read never returns an error; it crashes the program instead.
	_, _ = rand.Read(raw[:])
	var out [(requestIDBytes + 2) / 3 * 4]byte
	base64.StdEncoding.Encode(out[:], raw[:])
	return string(out[:])
}

package connections

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	// NodeIDLen is the length of a node id: 6 random bytes in base64url.
	NodeIDLen = 8
	// IDLen is the length of a connection id: the node id and 12 random bytes in base64url.
	IDLen = NodeIDLen + 16

	// nodeIDFile is the file in the data directory that holds the node id.
	nodeIDFile = "node.id"
)

// NodeID returns the node's persistent id, creating it on first use: dataDir/node.id holds it (mode 0600). It is
// 8 characters of base64url (6 random bytes).
//
// Creation is atomic: the id is written to a temporary file that is then linked into place, so two processes
// starting on the same data directory agree on one id, and a crash never leaves a partial file. An existing
// file that does not hold a well-formed id is an error, not replaced: the node's connection ids depend on it.
func NodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, nodeIDFile)
	id, err := readNodeID(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("connections: node id: %w", err)
	}
	var b [6]byte
	rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	id = base64.RawURLEncoding.EncodeToString(b[:])

	tmp, err := os.CreateTemp(dataDir, nodeIDFile+".*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("connections: node id: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(id + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", fmt.Errorf("connections: node id: writing %s: %w", tmp.Name(), werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race: use its id
			return readNodeID(path)
		}
		return "", fmt.Errorf("connections: node id: %w", err)
	}
	return id, nil
}

// readNodeID reads and checks the node id in path; the error wraps fs.ErrNotExist when there is none.
func readNodeID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("connections: node id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if len(id) != NodeIDLen || !urlSafe(id) {
		return "", fmt.Errorf("connections: node id: %s holds %q: want %d characters of base64url", path, truncate(id, 40), NodeIDLen)
	}
	return id, nil
}

// NewID returns a new connection id for node: the node id followed by 16 characters of base64url (12 random bytes),
// 24 characters in all, URL-safe, unguessable.
//
// node must be an id returned by [NodeID]; NewID panics otherwise, since the result would not name its node.
func NewID(node string) string {
	if len(node) != NodeIDLen || !urlSafe(node) {
		panic(fmt.Sprintf("connections: NewID: node id %q is not %d characters of base64url", truncate(node, 40), NodeIDLen))
	}
	var b [12]byte
	rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	buf := make([]byte, IDLen)
	copy(buf, node)
	base64.RawURLEncoding.Encode(buf[NodeIDLen:], b[:])
	return string(buf)
}

// NodeOf returns the node id inside a connection id, and false when id is not a well-formed connection id.
func NodeOf(id string) (string, bool) {
	if len(id) != IDLen || !urlSafe(id) {
		return "", false
	}
	return id[:NodeIDLen], true
}

// urlSafe reports whether s is made only of the base64url alphabet (A–Z, a–z, 0–9, - and _).
func urlSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

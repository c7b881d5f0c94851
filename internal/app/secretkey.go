package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gatehouse.dev/gatehouse/functions"
)

// secretKeyFile, in the data directory, holds the key that seals secret environment values in the
// function registry: 32 random bytes, hex-encoded, mode 0600. Losing it makes stored secrets
// unreadable; every node of a stack needs the same one.
const secretKeyFile = "secret.key"

// ensureSecretKey reads the data directory's secret key, creating it on first start.
func ensureSecretKey(dataDir string) ([]byte, error) {
	key, err := readSecretKey(dataDir)
	if !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	key = make([]byte, functions.SecretKeySize)
	rand.Read(key)
	path := filepath.Join(dataDir, secretKeyFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process made it first
		return readSecretKey(dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return key, nil
}

// readSecretKey reads the data directory's secret key; the error wraps os.ErrNotExist when there is
// none.
func readSecretKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, secretKeyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != functions.SecretKeySize {
		return nil, fmt.Errorf("secret key: %s is not %d hex-encoded bytes; restore it from a backup (secrets stored with another key cannot be read)", path, functions.SecretKeySize)
	}
	return key, nil
}

package app

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gatehouse.dev/gatehouse/internal/sigv4"
)

// awsKeyFile, in the data directory, holds the access key `up` made for the AWS API on a first start
// with none configured (JSON, mode 0600).
const awsKeyFile = "aws-access-key.json"

// ensureAWSKey reads the data directory's generated access key, making it the first time; created
// says it was made now.
func ensureAWSKey(dataDir string) (key sigv4.Credentials, created bool, err error) {
	path := filepath.Join(dataDir, awsKeyFile)
	var stored struct{ AccessKeyID, SecretAccessKey string }
	data, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(data, &stored); err != nil || stored.AccessKeyID == "" || stored.SecretAccessKey == "" {
			return key, false, fmt.Errorf("%s is not an access key: delete it and start again to make a new one", path)
		}
		return sigv4.Credentials{AccessKeyID: stored.AccessKeyID, SecretAccessKey: stored.SecretAccessKey}, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}
	var b [40]byte
	_, _ = rand.Read(b[:])
	// Shaped as AWS's long-term keys: AKIA and 16 characters, and a 40-character secret.
	key = sigv4.Credentials{AccessKeyID: "AKIA" + base32.StdEncoding.EncodeToString(b[:10]),
		SecretAccessKey: base64.RawURLEncoding.EncodeToString(b[10:])[:40]}
	stored.AccessKeyID, stored.SecretAccessKey = key.AccessKeyID, key.SecretAccessKey
	data, _ = json.Marshal(stored)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process made it first
		return ensureAWSKey(dataDir)
	}
	if err != nil {
		return key, false, err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return key, false, err
	}
	return key, true, nil
}

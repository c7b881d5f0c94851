package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"

	"gatehouse.dev/gatehouse/internal/sigv4"
)

// functionCredentials is the access key process runtimes get, as Lambda functions get their
// execution role's (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY): what the AWS SDKs in their code sign
// @connections requests (and calls to iam-authorized routes) of this stack with. It is derived from
// the data directory's secret key and the stack's name, so the node's gateway and its workers — and
// every node sharing the secret key — agree on it without passing it around, and it never has to be
// stored. It opens nothing but this stack's signed endpoints.
func functionCredentials(secretKey []byte, stack string) sigv4.Credentials {
	derive := func(what string) []byte {
		mac := hmac.New(sha256.New, secretKey)
		mac.Write([]byte("gatehouse function credentials v1\x00" + what + "\x00" + stack))
		return mac.Sum(nil)
	}
	// Shaped as AWS's temporary keys: ASIA and 16 characters, and a 40-character secret.
	id := "ASIA" + base32.StdEncoding.EncodeToString(derive("id")[:10])
	secret := base64.RawURLEncoding.EncodeToString(derive("secret"))[:40]
	return sigv4.Credentials{AccessKeyID: id, SecretAccessKey: secret}
}

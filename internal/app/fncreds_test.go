package app

import (
	"bytes"
	"regexp"
	"testing"
)

func TestFunctionCredentials(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a, b := functionCredentials(key, "shop"), functionCredentials(key, "shop")
	if a != b {
		t.Errorf("not the same for the same key and stack: %v %v", a, b)
	}
	if !regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`).MatchString(a.AccessKeyID) || len(a.SecretAccessKey) != 40 {
		t.Errorf("not an access key's shape: id %q, secret of %d characters", a.AccessKeyID, len(a.SecretAccessKey))
	}
	if c := functionCredentials(key, "blog"); c.AccessKeyID == a.AccessKeyID || c.SecretAccessKey == a.SecretAccessKey {
		t.Error("two stacks share their function credentials")
	}
	if c := functionCredentials(bytes.Repeat([]byte{8}, 32), "shop"); c.AccessKeyID == a.AccessKeyID {
		t.Error("two secret keys give the same function credentials")
	}
}

package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkGatewayControls measures each gateway control, and all of them together (CORS, throttle, a
// cached JWT and an API key), against the same function behind a route without controls, side by
// side on one node: serial (latency) and with 16 requests in flight (throughput). The iam case
// includes signing each request in the benchmark's process, which shares the 2 cores.
//
//	go test ./internal/app -run '^$' -bench GatewayControls -benchtime 2000x
func BenchmarkGatewayControls(b *testing.B) {
	// hello ignores the event, so what is measured is the gateway's work, not a function's handling
	// of larger events.
	f := startControlsNode(b, "hello")
	base, bearer := f.base, f.bearer

	cases := []struct {
		name, path string
		header     map[string]string
		sign       bool
	}{
		{"none", "/plain/open", nil, false},
		{"cors", "/open", map[string]string{"Origin": "https://app.example"}, false},
		{"throttle", "/throttled-high", nil, false},
		{"jwt-cached", "/jwt", map[string]string{"Authorization": "Bearer " + bearer}, false},
		{"function-cached", "/fn", map[string]string{"x-token": "let-me-in"}, false},
		{"api-key", "/keyed-bench", nil, false},
		{"iam", "/iam", nil, true},
		{"all", "/all", f.allHeader(), false},
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	signer := v4.NewSigner()
	empty := sha256.Sum256(nil)
	send := func(path string, header map[string]string, sign bool) error {
		req, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		if sign {
			signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"},
				req, hex.EncodeToString(empty[:]), "execute-api", "us-east-1", time.Now())
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %d", path, resp.StatusCode)
		}
		return nil
	}
	// Every route runs the same function: start its instances for 16 requests in flight first, so
	// that no case pays for cold starts the others then reuse.
	var warm sync.WaitGroup
	for range 32 {
		warm.Add(1)
		go func() {
			defer warm.Done()
			for range 20 {
				send("/plain/open", nil, false)
			}
		}()
	}
	warm.Wait()
	for _, c := range cases {
		if c.path == "/keyed-bench" {
			c.path, c.header = "/keyed", map[string]string{"x-api-key": f.apiKey}
		}
		if err := send(c.path, c.header, c.sign); err != nil { // warm: instances, caches
			b.Fatal(err)
		}
		b.Run(c.name+"/serial", func(b *testing.B) {
			for b.Loop() {
				if err := send(c.path, c.header, c.sign); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/16-in-flight", func(b *testing.B) {
			b.SetParallelism(8) // 8 × GOMAXPROCS(2)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := send(c.path, c.header, c.sign); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// controlsNode is a node running controlsStack (every route's function built from one sample) with the
// credentials its controls accept.
type controlsNode struct {
	node   *Node
	base   string // http://gateway-address
	bearer string // an RS256 JWT the "corp" authorizer accepts (scope read); cached after first use
	apiKey string // an API key on the "bench" usage plan (throttle and quota far above any run)
}

// allHeader returns the request headers GET /all needs: a CORS origin, the JWT and the API key. /all
// has every control on: CORS, a route throttle, the JWT authorizer and apiKeyRequired.
func (c *controlsNode) allHeader() map[string]string {
	return map[string]string{"Origin": "https://app.example", "Authorization": "Bearer " + c.bearer, "x-api-key": c.apiKey}
}

// startControlsNode starts a node on controlsStack with every route running the sample fn, makes a
// JWT and an API key for it, and stops the node when tb's test or benchmark ends.
func startControlsNode(tb testing.TB, fn string) *controlsNode {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	n := startNode(tb, controlsStack(tb, key, fn), newDataDir(tb))
	tb.Cleanup(func() { n.Stop(context.Background()) })
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "https://id.example", "aud": "api://web", "sub": "alice",
		"scope": "read", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	bearer, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	var stdout, stderr syncBuffer
	if code := Main([]string{"keys", "create", "bench", "--plan", "bench", "--json", "--data", n.DataDir()}, &stdout, &stderr); code != 0 {
		tb.Fatalf("keys create: %s", stderr.String())
	}
	var created struct{ Key string }
	if err := json.Unmarshal([]byte(stdout.String()), &created); err != nil || created.Key == "" {
		tb.Fatalf("keys create: %q: %v", stdout.String(), err)
	}
	time.Sleep(200 * time.Millisecond) // the key reaches the gateway's copy
	return &controlsNode{node: n, base: "http://" + n.GatewayAddr(), bearer: bearer, apiKey: created.Key}
}

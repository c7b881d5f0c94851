// Command fetch is a test function for outbound HTTP. It requests the URL in the query parameter url
// with plain net/http (the method from ?method=, the request's body, the header X-Test), ?count=N
// times, and answers {"status", "echo" (the response's X-Echo header), "body" (base64), "calls"} or,
// when a request fails, {"error", "calls"}. With ?sign=1 it signs each request as the AWS SDK for
// Go v2 does (Signature Version 4, service execute-api, us-east-1) with the access key in its
// environment (KEY_ID, KEY_SECRET).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"gatehouse.dev/gatehouse/runtimes/sdk"
	_ "gatehouse.dev/gatehouse/runtimes/sdk/sdkhttp"
)

type answer struct {
	Status int    `json:"status,omitempty"`
	Echo   string `json:"echo,omitempty"`
	Body   string `json:"body,omitempty"`
	Error  string `json:"error,omitempty"`
	Calls  int    `json:"calls"`
}

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (json.RawMessage, error) {
	q := req.QueryStringParameters
	count, _ := strconv.Atoi(q["count"])
	count = max(count, 1)
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		body, _ = base64.StdEncoding.DecodeString(req.Body)
	}
	var a answer
	for a.Calls < count {
		r, err := http.NewRequestWithContext(ctx, cmpOr(q["method"], "GET"), q["url"], bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		r.Header.Set("X-Test", req.Headers["x-test"])
		if q["sign"] != "" {
			sum := sha256.Sum256(body)
			creds := aws.Credentials{AccessKeyID: os.Getenv("KEY_ID"), SecretAccessKey: os.Getenv("KEY_SECRET")}
			if err := v4.NewSigner().SignHTTP(ctx, creds, r, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", time.Now()); err != nil {
				return nil, err
			}
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			a.Error = err.Error()
			break
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		a.Calls++
		a.Status, a.Echo, a.Body = resp.StatusCode, resp.Header.Get("X-Echo"), base64.StdEncoding.EncodeToString(b)
	}
	return json.Marshal(a)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func main() { sdk.Start(handle) }

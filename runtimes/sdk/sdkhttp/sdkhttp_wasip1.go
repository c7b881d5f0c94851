//go:build wasip1

package sdkhttp

import "net/http"

// native is nil in a sandbox: requests go through Gatehouse.
var native http.RoundTripper

func init() {
	http.DefaultTransport = Transport{}
}

//go:build !wasip1

package sdkhttp

import "net/http"

// native sends the requests of a function run natively (go run, go test): the process's own
// network, as it has no sandbox.
var native = http.DefaultTransport

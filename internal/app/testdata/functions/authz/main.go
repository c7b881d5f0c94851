// Command authz is a test function authorizer: it allows a request whose identity source (the
// x-token header) is "let-me-in", with a context naming the user, fails for "boom", and denies any
// other. It prints a line for each decision.
package main

import (
	"context"
	"errors"
	"fmt"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

type request struct {
	IdentitySource []string `json:"identitySource"`
	RouteArn       string   `json:"routeArn"`
}

type answer struct {
	IsAuthorized bool           `json:"isAuthorized"`
	Context      map[string]any `json:"context,omitempty"`
}

func handle(ctx context.Context, r request) (answer, error) {
	fmt.Printf("deciding for %v\n", r.IdentitySource)
	if len(r.IdentitySource) == 1 && r.IdentitySource[0] == "boom" {
		return answer{}, errors.New("the authorizer failed")
	}
	if len(r.IdentitySource) == 1 && r.IdentitySource[0] == "let-me-in" {
		return answer{IsAuthorized: true, Context: map[string]any{"user": "u1", "routeArn": r.RouteArn}}, nil
	}
	return answer{IsAuthorized: false}, nil
}

func main() { sdk.Start(handle) }

// Command gatehouse is a serverless function host with a built-in API gateway.
package main

import (
	"os"

	"gatehouse.dev/gatehouse/internal/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr)) }

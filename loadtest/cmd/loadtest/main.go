// Command loadtest is Gatehouse's load generator on its own; `gatehouse loadtest` is the same command.
package main

import (
	"fmt"
	"os"

	"gatehouse.dev/gatehouse/loadtest"
)

func main() {
	cmd := loadtest.NewCommand(os.Stdout, os.Stderr)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

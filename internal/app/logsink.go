package app

import (
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/scheduler"
)

// newLogSink sends a worker's function output to the stack's log stream.
func newLogSink(c *bus.Client, stack, worker string) func(scheduler.LogRecord) {
	return nil
}

// logSubjects matches the subjects of the stack's function logs.
func logSubjects(stack string) string { return "gh." + stack + ".logs.*" }

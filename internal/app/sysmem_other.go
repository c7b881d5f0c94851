//go:build !linux

package app

// physicalMemory is the machine's memory in bytes, or 0 when unknown.
func physicalMemory() int64 { return 0 }

package app

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// functionTable is what `up` hands its workers: the functions to serve. It is written to the data
// directory with mode 0600, since environments may hold secrets.
type functionTable struct {
	Version   int             `json:"version"`
	Stack     string          `json:"stack"`
	Functions []functionEntry `json:"functions"`
}

const functionTableVersion = 1

type functionEntry struct {
	Name           string            `json:"name"`
	Version        string            `json:"version"`
	Wasm           string            `json:"wasm"`
	SHA256         string            `json:"sha256"`
	MemoryMB       int               `json:"memoryMB"`
	TimeoutMs      int64             `json:"timeoutMs"`
	Env            map[string]string `json:"env,omitempty"`
	MaxConcurrency int               `json:"maxConcurrency,omitempty"`
	MinWarm        int               `json:"minWarm,omitempty"`
	IdleTimeoutMs  int64             `json:"idleTimeoutMs,omitempty"`
}

func (e functionEntry) timeout() time.Duration { return time.Duration(e.TimeoutMs) * time.Millisecond }

func writeFunctionTable(path string, t functionTable) error {
	t.Version = functionTableVersion
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readFunctionTable(path string) (functionTable, error) {
	var t functionTable
	b, err := os.ReadFile(path)
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("%s: %w", path, err)
	}
	if t.Version != functionTableVersion {
		return t, fmt.Errorf("%s: table version %d, want %d", path, t.Version, functionTableVersion)
	}
	return t, nil
}

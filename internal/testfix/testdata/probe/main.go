// Command probe is a test function that reports what its sandbox lets it see: its environment, and the
// errors it gets trying to read the file system and open a network connection.
package main

import (
	"context"
	"encoding/json"
	"net"
	"os"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

type report struct {
	Env      []string `json:"env"`
	Args     []string `json:"args"`
	ReadDir  string   `json:"readDir"`
	OpenFile string   `json:"openFile"`
	Dial     string   `json:"dial"`
	Deadline bool     `json:"deadline"`
	Request  string   `json:"request"`
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func handle(ctx context.Context, _ json.RawMessage) (report, error) {
	r := report{Env: os.Environ(), Args: os.Args}
	_, err := os.ReadDir("/")
	r.ReadDir = errText(err)
	if err == nil {
		r.ReadDir = "no error"
	}
	f, err := os.Open("/etc/passwd")
	r.OpenFile = errText(err)
	if err == nil {
		f.Close()
		r.OpenFile = "no error"
	}
	c, err := net.Dial("tcp", "127.0.0.1:1")
	r.Dial = errText(err)
	if err == nil {
		c.Close()
		r.Dial = "no error"
	}
	_, r.Deadline = ctx.Deadline()
	inv, _ := sdk.FromContext(ctx)
	r.Request = inv.RequestID
	return r, nil
}

func main() { sdk.Start(handle) }

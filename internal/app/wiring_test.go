package app

import (
	"reflect"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/functions"
	commands "gatehouse.dev/gatehouse/internal/cli"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/runtimes"
)

// TestNodeAndCommandsAgree: what up uses and what the commands of internal/cli use for the same
// thing are the same: where a node keeps its data, the stack file, the manifest a stack file gives a
// function (up deploys it, `gatehouse deploy DIR` too), the SDK's requirements.
func TestNodeAndCommandsAgree(t *testing.T) {
	if commands.DefaultDataDir != DefaultDataDir || commands.DefaultStackFile != DefaultStackFile {
		t.Errorf("cli defaults %q, %q; up's %q, %q", commands.DefaultDataDir, commands.DefaultStackFile, DefaultDataDir, DefaultStackFile)
	}
	fn := spec.Function{FunctionSettings: spec.FunctionSettings{MemoryMB: 256, Timeout: spec.Duration(7 * time.Second), Environment: map[string]string{"A": "1"},
		MaxConcurrency: 4, MinWarm: 1, IdleTimeout: spec.Duration(time.Minute)}}
	if up, deploy := stackManifest("f", fn), functions.SpecManifest("f", fn); !reflect.DeepEqual(up, deploy) {
		t.Errorf("up deploys %+v, deploy DIR %+v", up, deploy)
	}
	if want := []string{"github.com/aws/aws-lambda-go " + awsLambdaGoVersion}; !reflect.DeepEqual(runtimes.GoSDKRequires(), want) {
		t.Errorf("gatehouse build requires %v, up %v", runtimes.GoSDKRequires(), want)
	}
}

package runtimes

import (
	"embed"
	"io/fs"
)

// SDKImportPath is the import path of the Go guest SDK.
const SDKImportPath = "gatehouse.dev/gatehouse/runtimes/sdk"

// AWSLambdaGoVersion is the version of github.com/aws/aws-lambda-go the SDK is built with outside
// this module: the one this module requires (TestAWSLambdaGoVersion keeps them equal).
const AWSLambdaGoVersion = "v1.55.1"

// GoSDKRequires are the module requirements a function built outside this module gets with the SDK.
func GoSDKRequires() []string {
	return []string{"github.com/aws/aws-lambda-go " + AWSLambdaGoVersion}
}

//go:embed sdk/*.go sdk/sdkhttp/*.go
var sdkSource embed.FS

// GoSDKSource returns the SDK's Go source files (tests excluded), its packages in their
// directories, so functions can be built against it outside this repository.
func GoSDKSource() fs.FS {
	sub, err := fs.Sub(sdkSource, "sdk")
	if err != nil {
		panic(err) // the embedded tree always has the directory
	}
	return sdk{sub}
}

// sdk hides test files from the embedded tree.
type sdk struct{ fs.FS }

func (s sdk) ReadDir(name string) ([]fs.DirEntry, error) {
	all, err := fs.ReadDir(s.FS, name)
	var out []fs.DirEntry
	for _, e := range all {
		if !isTestFile(e.Name()) {
			out = append(out, e)
		}
	}
	return out, err
}

func isTestFile(name string) bool {
	return len(name) > 8 && name[len(name)-8:] == "_test.go"
}

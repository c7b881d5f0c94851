package runtimes_test

import (
	"os"
	"regexp"
	"testing"

	"gatehouse.dev/gatehouse/runtimes"
)

// TestAWSLambdaGoVersion: functions built outside this module get the aws-lambda-go this module
// requires, the one the SDK is tested with.
func TestAWSLambdaGoVersion(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/aws/aws-lambda-go (v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/aws/aws-lambda-go")
	}
	if string(m[1]) != runtimes.AWSLambdaGoVersion {
		t.Fatalf("runtimes.AWSLambdaGoVersion is %s, go.mod requires %s", runtimes.AWSLambdaGoVersion, m[1])
	}
}

package app

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// BenchmarkAWSAPI measures control-plane calls through the AWS API with the AWS SDK for Go v2, one
// at a time: a signed STS GetCallerIdentity (the listener and SigV4 alone), Lambda GetFunction and
// ListFunctions (a registry read), and Lambda Invoke of a WebAssembly hello (the control plane's
// path to a function), each with p50 and p99. Run with:
//
//	go test -run '^$' -bench AWSAPI ./internal/app/
func BenchmarkAWSAPI(b *testing.B) {
	data := newDataDir(b)
	n := startNode(b, filepath.Join("testdata", "stack.yaml"), data, func(o *Options) { o.AWSAddr = "127.0.0.1:0" })
	defer n.Stop(context.Background())
	key, created, err := ensureAWSKey(data)
	if err != nil || created {
		b.Fatalf("the node's access key: %v (made now: %v)", err, created)
	}
	cfg := awsConfig(key.AccessKeyID, key.SecretAccessKey)
	endpoint := aws.String("http://" + n.AWSAddr())
	lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = endpoint })
	sc := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = endpoint })
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"sts-GetCallerIdentity", func() error { _, err := sc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); return err }},
		{"lambda-GetFunction", func() error {
			_, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")})
			return err
		}},
		{"lambda-ListFunctions", func() error { _, err := lc.ListFunctions(ctx, &lambda.ListFunctionsInput{}); return err }},
		{"lambda-Invoke", func() error {
			_, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: []byte(`{"rawPath":"/hello"}`)})
			return err
		}},
	}
	for _, c := range calls {
		for range 50 {
			if err := c.call(); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
		}
		b.Run(c.name, func(b *testing.B) {
			var d []time.Duration
			for b.Loop() {
				start := time.Now()
				if err := c.call(); err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(start))
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
		})
	}
}

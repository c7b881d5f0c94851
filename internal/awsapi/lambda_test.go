package awsapi

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/sigv4"
	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

// startLambdaNode starts an AWS API server on a registry of its own and returns a Lambda client
// for it; everything stops when the test ends.
func startLambdaNode(t *testing.T) (*lambda.Client, *functions.Registry) {
	t.Helper()
	_, js := jstest.Connect(t, jstest.Start(t, ""))
	reg, err := functions.OpenRegistry(context.Background(), js, functions.RegistryConfig{Stack: "t"})
	if err != nil {
		t.Fatal(err)
	}
	key := sigv4.Credentials{AccessKeyID: "AKIAGATEHOUSETEST01", SecretAccessKey: "test-secret-key-of-forty-characters-000"}
	srv, err := New(Config{Keys: []sigv4.Credentials{key}, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	cfg := aws.Config{Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey}, nil
		})}
	return lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String("http://" + ln.Addr().String()) }), reg
}

// zipOf is a zip of one file.
func zipOf(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// status is the HTTP status of an SDK call's error; 0 when there is none.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// TestLambdaSnapStart: CreateFunction and UpdateFunctionConfiguration take SnapStart's ApplyOn
// (PublishedVersions or None; another value is a 400 InvalidParameterValueException), a change
// makes a version, and every configuration shows SnapStart: ApplyOn with its OptimizationStatus.
func TestLambdaSnapStart(t *testing.T) {
	lc, reg := startLambdaNode(t)
	ctx := context.Background()
	role := aws.String("arn:aws:iam::000000000000:role/lambda-role")
	code := &types.FunctionCode{ZipFile: zipOf(t, "function.wasm", []byte("\x00asm\x01\x00\x00\x00"))}
	on := types.SnapStartResponse{ApplyOn: types.SnapStartApplyOnPublishedVersions, OptimizationStatus: types.SnapStartOptimizationStatusOn}
	off := types.SnapStartResponse{ApplyOn: types.SnapStartApplyOnNone, OptimizationStatus: types.SnapStartOptimizationStatusOff}
	same := func(got *types.SnapStartResponse, want types.SnapStartResponse) bool {
		return got != nil && got.ApplyOn == want.ApplyOn && got.OptimizationStatus == want.OptimizationStatus
	}

	created, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("snappy"), Runtime: types.Runtime("wasm"), Role: role, Code: code,
		SnapStart: &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions}})
	if err != nil || !same(created.SnapStart, on) {
		t.Fatalf("CreateFunction with SnapStart: %+v %v", created, err)
	}
	if v, err := reg.Version(ctx, "snappy", 1); err != nil || !v.Manifest.SnapStart {
		t.Fatalf("the stored version: %+v %v", v.Manifest, err)
	}
	got, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("snappy")})
	if err != nil || !same(got.Configuration.SnapStart, on) {
		t.Errorf("GetFunction: %+v %v", got, err)
	}
	cfg, err := lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("snappy")})
	if err != nil || !same(cfg.SnapStart, on) {
		t.Errorf("GetFunctionConfiguration: %+v %v", cfg, err)
	}
	list, err := lc.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(list.Functions) != 1 || !same(list.Functions[0].SnapStart, on) {
		t.Errorf("ListFunctions: %+v %v", list, err)
	}
	pub, err := lc.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("snappy")})
	if err != nil || aws.ToString(pub.Version) != "1" || !same(pub.SnapStart, on) {
		t.Errorf("PublishVersion: %+v %v", pub, err)
	}

	// Turned off: a new version; the first keeps it.
	upd, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("snappy"),
		SnapStart: &types.SnapStart{ApplyOn: types.SnapStartApplyOnNone}})
	if err != nil || !same(upd.SnapStart, off) {
		t.Fatalf("UpdateFunctionConfiguration to None: %+v %v", upd, err)
	}
	if f, err := reg.Get(ctx, "snappy"); err != nil || f.LatestVersion != 2 {
		t.Errorf("after the update: %+v %v, want version 2", f, err)
	}
	if v1, err := lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("snappy"), Qualifier: aws.String("1")}); err != nil || !same(v1.SnapStart, on) {
		t.Errorf("version 1 after the update: %+v %v", v1, err)
	}
	// On again, with another setting; then a change that does not name SnapStart keeps it.
	if upd, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("snappy"), MemorySize: aws.Int32(256),
		SnapStart: &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions}}); err != nil || !same(upd.SnapStart, on) {
		t.Fatalf("UpdateFunctionConfiguration to PublishedVersions: %+v %v", upd, err)
	}
	if upd, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("snappy"), Timeout: aws.Int32(10)}); err != nil || !same(upd.SnapStart, on) || aws.ToInt32(upd.MemorySize) != 256 {
		t.Errorf("UpdateFunctionConfiguration of the timeout: %+v %v", upd, err)
	}

	// Refused: another ApplyOn, and SnapStart on a process runtime.
	_, err = lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("snappy"),
		SnapStart: &types.SnapStart{ApplyOn: "Always"}})
	if errorCode(err) != "InvalidParameterValueException" || status(err) != 400 || !strings.Contains(err.Error(), `SnapStart.ApplyOn "Always": want PublishedVersions or None`) {
		t.Errorf("UpdateFunctionConfiguration with ApplyOn Always: %v", err)
	}
	_, err = lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("other"), Runtime: types.Runtime("wasm"), Role: role, Code: code,
		SnapStart: &types.SnapStart{ApplyOn: "Always"}})
	if errorCode(err) != "InvalidParameterValueException" || status(err) != 400 || !strings.Contains(err.Error(), "SnapStart.ApplyOn") {
		t.Errorf("CreateFunction with ApplyOn Always: %v", err)
	}
	_, err = lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("py"), Runtime: types.RuntimePython312, Handler: aws.String("app.handler"), Role: role,
		Code: &types.FunctionCode{ZipFile: zipOf(t, "app.py", []byte("def handler(e, c):\n    return e\n"))}, SnapStart: &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions}})
	if errorCode(err) != "InvalidParameterValueException" || !strings.Contains(err.Error(), "snapStart: applies to WebAssembly functions only") {
		t.Errorf("CreateFunction of a python3.12 function with SnapStart: %v", err)
	}

	// A function made without SnapStart shows it off.
	plain, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("plain"), Runtime: types.Runtime("wasm"), Role: role, Code: code})
	if err != nil || !same(plain.SnapStart, off) {
		t.Errorf("CreateFunction without SnapStart: %+v %v", plain, err)
	}
}
